package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// get fetches a manifest or index. The transport caps its size and
// retries the request; a body cut short is retried here.
func (c *Client) get(ctx context.Context, ref name.Reference, opts ...remote.Option) (*remote.Descriptor, error) {
	if opts == nil {
		opts = c.Remote(ctx)
	}
	var desc *remote.Descriptor
	err := c.retryTransfer(ctx, func() error {
		var err error
		desc, err = remote.Get(ref, opts...)
		return err
	})
	if err == nil {
		desc.Manifest = exact(desc.Manifest)
	}
	return desc, explain(err)
}

// exact returns b in a slice of its own length. A body read whole keeps
// the spare capacity its buffer grew to, and a bundle holds the manifest
// and config of every image until it is written.
func exact(b []byte) []byte {
	if cap(b) == len(b) {
		return b
	}
	return bytes.Clone(b)
}

// configOf fetches an image's config, at most MaxConfigBytes, checked
// against the digest its manifest gives. go-containerregistry's
// RawConfigFile would read any size, and keep a body cut short.
func (c *Client) configOf(ctx context.Context, src string, img v1.Image, manifest []byte) (v1.Hash, []byte, error) {
	mf, err := v1.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("parsing manifest: %w", err)
	}
	cfg, err := c.configBlob(ctx, src, img, mf.Config)
	return mf.Config.Digest, cfg, err
}

// configBlob fetches the config d describes (see configOf).
func (c *Client) configBlob(ctx context.Context, src string, img v1.Image, d v1.Descriptor) ([]byte, error) {
	if d.Size > MaxConfigBytes {
		return nil, tooLarge(src+": config "+d.Digest.String(), d.Size, MaxConfigBytes)
	}
	var cfg []byte
	err := c.retryTransfer(ctx, func() error {
		var err error
		cfg, err = readSmallBlob(img, d.Digest, src+": config "+d.Digest.String())
		return err
	})
	return cfg, explain(err)
}

// readSmallBlob reads a blob of at most MaxConfigBytes, verified against
// its digest as it is read.
func readSmallBlob(img v1.Image, h v1.Hash, what string) ([]byte, error) {
	l, err := img.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxConfigBytes {
		return nil, tooLarge(what, -1, MaxConfigBytes)
	}
	return exact(b), nil
}

// explain rewrites the errors go-containerregistry's ping composes from an
// https attempt and a plain-HTTP one, which the guard refuses for hosts not
// named insecure: a TLS failure is reported alone, with what to do about
// it, and a host that answered https in plain HTTP is told so once.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var certErr *tls.CertificateVerificationError
	var plain *PlainHTTPError
	switch {
	case errors.As(err, &certErr):
		host := "HOST"
		if errors.As(err, &plain) {
			host = plain.Host
		}
		return fmt.Errorf("%w (for a private CA set SSL_CERT_FILE; to skip verification pass --insecure-registry %s)", certErr, host)
	case errors.As(err, &plain) && plain.Served:
		return plain
	}
	return err
}
