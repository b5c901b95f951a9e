package registry

import (
	"context"
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rancher/ferry/bundle"
)

// streamedBlob is a blob to send from an archive that decompresses only
// forward, with its offset in that archive's tar stream.
type streamedBlob struct {
	dst    name.Repository
	desc   v1.Descriptor
	offset int64
}

// uploadInArchiveOrder sends the blobs of archives that are not seekable
// (gzip, zstd without a seek table) one archive at a time each, in the
// order they are stored, so each such archive is decompressed about once
// more instead of once per blob. Archives go in parallel with each other;
// blobs of seekable archives are left to pushImage, which sends them in
// parallel. A blob read from a seekable archive is never queued here, even
// when a non-seekable archive holds it too: the catalog reads each blob
// from one place.
func (r *pushRun) uploadInArchiveOrder(ctx context.Context) error {
	queues := r.streamedQueues()
	err := r.eachLimited(ctx, len(queues), func(ctx context.Context, i int) error {
		for _, b := range queues[i] {
			if err := r.ensureBlob(ctx, b.dst, b.desc); err != nil {
				return fmt.Errorf("pushing %s to %s: %w", b.desc.Digest, b.dst, err)
			}
		}
		return nil
	})
	return err
}

// streamedQueues groups the blobs of images to push by non-seekable
// archive, each group sorted by offset.
func (r *pushRun) streamedQueues() [][]streamedBlob {
	byArchive := map[*bundle.Archive][]streamedBlob{}
	var order []*bundle.Archive
	for _, j := range r.images {
		if j.existed {
			continue
		}
		for _, d := range j.blobs {
			a, off, ok := r.cat.Position(d.Digest)
			if !ok || a.Seekable() {
				continue
			}
			if _, seen := byArchive[a]; !seen {
				order = append(order, a)
			}
			byArchive[a] = append(byArchive[a], streamedBlob{dst: j.dst, desc: d, offset: off})
		}
	}
	queues := make([][]streamedBlob, 0, len(order))
	for _, a := range order {
		q := byArchive[a]
		sort.SliceStable(q, func(i, k int) bool { return q[i].offset < q[k].offset })
		queues = append(queues, q)
	}
	return queues
}
