package registry

import (
	"os"
	"strings"
	"testing"
)

func TestReadImageListExample(t *testing.T) {
	f, err := os.Open("../testdata/windows-images.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	refs, err := ReadImageList(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 3 || !strings.HasSuffix(refs[1], "@sha256:036d575e82945c112ef84e4585caff3648322a2f9ed4c3a6ce409dd10abc4f34") ||
		refs[2] != "mcr.microsoft.com/windows/nanoserver:ltsc2022" {
		t.Fatalf("refs %q: want 3, duplicates and comments dropped", refs)
	}
	for _, ref := range refs {
		if _, err := newClient(t).ParseReference(ref); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
}

func TestReadImageListRejectsTwoRefsOnALine(t *testing.T) {
	if _, err := ReadImageList(strings.NewReader("a:1 b:2\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v", err)
	}
}
