package bundle

import (
	"bytes"
	"encoding/json"
	"sort"
)

// repositories is docker's legacy repositories file, {"repo":{"tag":"top
// layer"}}, made from the tagged images it lists by index, so that a
// bundle of thousands of images does not hold a map per repository until
// it is written. Its bytes are those json.Marshal gives for the map: keys
// sorted, and a repeated repo:tag names the top layer of its last image.
type repositories []int

func (r *repositories) add(i int) { *r = append(*r, i) }

func repoOf(img *Image) string { return img.Name[:len(img.Name)-len(img.Tag)-1] }

// marshal encodes the file; each image's top layer is read from its
// manifest again.
func (r repositories) marshal(images []Image) ([]byte, error) {
	idx := append([]int(nil), r...)
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := &images[idx[a]], &images[idx[b]]
		if rx, ry := repoOf(x), repoOf(y); rx != ry {
			return rx < ry
		}
		return x.Tag < y.Tag
	})
	var buf bytes.Buffer
	buf.WriteByte('{')
	open := "" // the repository whose object is being written
	for k, i := range idx {
		img := &images[i]
		if k+1 < len(idx) && repoOf(&images[idx[k+1]]) == repoOf(img) && images[idx[k+1]].Tag == img.Tag {
			continue // the last image of a repo:tag wins, as in a map
		}
		m, err := img.Parsed()
		if err != nil {
			return nil, err
		}
		first := buf.Len() == 1 || repoOf(img) != open
		switch {
		case first && buf.Len() > 1:
			buf.WriteString("},")
		case !first:
			buf.WriteByte(',')
		}
		if first {
			open = repoOf(img)
			writeJSONString(&buf, open)
			buf.WriteString(":{")
		}
		writeJSONString(&buf, img.Tag)
		buf.WriteByte(':')
		writeJSONString(&buf, m.Layers[len(m.Layers)-1].Digest.Hex)
	}
	if buf.Len() > 1 {
		buf.WriteByte('}')
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// writeJSONString writes s as encoding/json writes a string or map key.
func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always encodes
	buf.Write(b)
}
