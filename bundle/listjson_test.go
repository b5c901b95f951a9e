package bundle

import (
	"encoding/json"
	"reflect"
	"testing"
)

var manifestSeeds = []string{
	`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":119,"digest":"sha256:e0cf5cb001ae8dbcb8f5b6e46eefe3ada46aff4462e8a707958e0af4d180f2ac"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":16806,"digest":"sha256:2ddafae91f6034d9bc2937f04bbda12f7ef4892c8c3cc4b3e1ced1737e54d47d"},{"size":1225,"digest":"sha256:7be3dbef4fea93feb8b415708be9889e9d27811f627a820ebb790391604f6ac2","urls":["https://x"],"annotations":{"a":"b"}}]}`,
	"{\n  \"config\": {\"digest\": \"sha256:ab\", \"size\": 1},\n  \"layers\": [],\n  \"annotations\": {\"k\": [1, 2.5e3, -0, true, false, null, {\"x\": {}}]}\n}\n",
	`{"layers":null}`, `{"config":null}`, `{"Config":{"digest":"a"}}`, `{"config":{"digest":"a","Digest":"b"}}`,
	`{"config":{"size":1.0}}`, `{"config":{"size":01}}`, `{"config":{"digest":"caf\u00e9"}}`, `{"config":{}} x`,
	`{"config":{"size":9223372036854775808}}`, `{"layers":[null]}`, `[]`, ``, `{"a":tru}`, `{"config":{"digest":"é"}}`,
}

// FuzzScanManifest holds scanManifest to encoding/json: whatever it
// accepts must decode, with encoding/json, to the same config and layers.
func FuzzScanManifest(f *testing.F) {
	for _, s := range manifestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		config, layers, ok := scanManifest(raw)
		if !ok {
			return
		}
		var want struct {
			Config manifestBlob   `json:"config"`
			Layers []manifestBlob `json:"layers"`
		}
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("scanManifest accepted what encoding/json rejects (%v): %q", err, raw)
		}
		if !reflect.DeepEqual(config, want.Config) || !reflect.DeepEqual(layers, want.Layers) {
			t.Fatalf("%q:\nscanManifest %+v %#v\nencoding/json %+v %#v", raw, config, layers, want.Config, want.Layers)
		}
	})
}

// TestScanManifestTakesRegistryManifests: the shortcut is taken for
// manifests as registries write them, or listing gains nothing.
func TestScanManifestTakesRegistryManifests(t *testing.T) {
	for _, s := range manifestSeeds[:2] {
		if _, _, ok := scanManifest([]byte(s)); !ok {
			t.Errorf("not scanned: %s", s)
		}
	}
	config, layers, _ := scanManifest([]byte(manifestSeeds[0]))
	if config.Size != 119 || len(layers) != 2 || layers[1].Size != 1225 || layers[1].Digest != "sha256:7be3dbef4fea93feb8b415708be9889e9d27811f627a820ebb790391604f6ac2" {
		t.Errorf("scanned %+v %+v", config, layers)
	}
}
