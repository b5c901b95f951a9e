package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// repoReader reads manifests and blobs of one repository over plain HTTP
// requests. Verification needs what remote.Get hides: the bytes as served
// even when they do not match the digest asked for, the Content-Type, and
// a 404 told apart from a failing connection.
type repoReader struct {
	repo   name.Repository
	client *http.Client
	c      *Client
}

var acceptManifests = strings.Join([]string{
	string(types.DockerManifestList), string(types.OCIImageIndex),
	string(types.DockerManifestSchema2), string(types.OCIManifestSchema1),
}, ", ")

// newRepoReader sets up pull access to repo with the client's credentials,
// TLS, retries and user agent.
func (c *Client) newRepoReader(ctx context.Context, repo name.Repository) (*repoReader, error) {
	auth, err := authn.Resolve(ctx, c.opts.keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo, err)
	}
	rt := transport.NewUserAgent(c.rt, c.opts.userAgent)
	rt, err = transport.NewWithContext(ctx, repo.Registry, auth, rt, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo.Registry, explain(err))
	}
	return &repoReader{repo: repo, client: &http.Client{Transport: rt}, c: c}, nil
}

func (r *repoReader) url(kind, id string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", r.repo.Scheme(), r.repo.RegistryStr(), r.repo.RepositoryStr(), kind, id)
}

// fetched is a manifest as served.
type fetched struct {
	body        []byte
	contentType types.MediaType
}

// manifest GETs a manifest by tag or digest. A registry's "not found" comes
// back as a *notFoundError, anything else as an I/O error.
// The transport caps the body at MaxManifestBytes.
func (r *repoReader) manifest(ctx context.Context, id string) (*fetched, error) {
	var f *fetched
	err := r.c.retryTransfer(ctx, func() error {
		resp, err := r.do(ctx, http.MethodGet, r.url("manifests", id), acceptManifests)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("reading manifest %s@%s: %w", r.repo, id, err)
		}
		ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
		f = &fetched{body: body, contentType: types.MediaType(strings.TrimSpace(ct))}
		return nil
	})
	return f, err
}

// blob GETs a small blob (a config) and checks its digest.
func (r *repoReader) blob(ctx context.Context, h v1.Hash) ([]byte, error) {
	var body []byte
	err := r.c.retryTransfer(ctx, func() error {
		resp, err := r.do(ctx, http.MethodGet, r.url("blobs", h.String()), "")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		what := fmt.Sprintf("%s@%s: config", r.repo, h)
		if resp.ContentLength > MaxConfigBytes {
			return tooLarge(what, resp.ContentLength, MaxConfigBytes)
		}
		body, err = io.ReadAll(io.LimitReader(resp.Body, MaxConfigBytes+1))
		if err != nil {
			return fmt.Errorf("reading blob %s@%s: %w", r.repo, h, err)
		}
		if len(body) > MaxConfigBytes {
			return tooLarge(what, -1, MaxConfigBytes)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if got, _, err := v1.SHA256(strings.NewReader(string(body))); err != nil || got != h {
		return nil, &contentError{fmt.Sprintf("blob served for %s has digest %s", h, got)}
	}
	return body, nil
}

// headBlob reports whether the repository holds a blob.
func (r *repoReader) headBlob(ctx context.Context, h v1.Hash) error {
	resp, err := r.do(ctx, http.MethodHead, r.url("blobs", h.String()), "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (r *repoReader) do(ctx context.Context, method, url, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		if isNotFound(err) {
			return nil, &notFoundError{err}
		}
		return nil, err
	}
	return resp, nil
}

// notFoundError is a registry saying it does not have something: a problem
// with the list being verified, not with reaching the registry.
type notFoundError struct{ err error }

func (e *notFoundError) Error() string { return e.err.Error() }
func (e *notFoundError) Unwrap() error { return e.err }

// contentError is content that does not match what references it.
type contentError struct{ msg string }

func (e *contentError) Error() string { return e.msg }

func isNotFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	return terr.StatusCode == http.StatusNotFound || hasErrorCode(err,
		transport.ManifestUnknownErrorCode, transport.ManifestBlobUnknownErrorCode,
		transport.BlobUnknownErrorCode, transport.NameUnknownErrorCode)
}

// isProblem tells findings (exit 1) from failures to verify at all (exit 2).
func isProblem(err error) bool {
	var nf *notFoundError
	var ce *contentError
	return errors.As(err, &nf) || errors.As(err, &ce) || errors.Is(err, ErrTooLarge)
}
