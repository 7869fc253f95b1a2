package replicate

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Endpoint is one side of a copy: a registry, how to reach it and who to
// be there.
type Endpoint struct {
	Registry name.Registry
	// Transport carries the requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Auth is the identity used; nil means the user's docker config
	// (authn.DefaultKeychain).
	Auth authn.Authenticator
}

// ParseRemote reads a remote as given on the command line:
// [http://|https://]host[:port][/path]. http:// allows plain HTTP;
// without a scheme, HTTPS is used except for localhost and private
// addresses, as docker does. path is what follows the host.
func ParseRemote(s string) (reg name.Registry, path string, err error) {
	var opts []name.Option
	switch {
	case strings.HasPrefix(s, "http://"):
		s, opts = strings.TrimPrefix(s, "http://"), []name.Option{name.Insecure}
	case strings.HasPrefix(s, "https://"):
		s = strings.TrimPrefix(s, "https://")
	case strings.Contains(s, "://"):
		return name.Registry{}, "", fmt.Errorf("remote %q: want http:// or https://", s)
	}
	host, path, _ := strings.Cut(s, "/")
	if host == "" {
		return name.Registry{}, "", fmt.Errorf("remote %q: no host", s)
	}
	reg, err = name.NewRegistry(host, append(opts, name.StrictValidation)...)
	if err != nil {
		return name.Registry{}, "", fmt.Errorf("remote %q: %v", s, err)
	}
	return reg, strings.Trim(path, "/"), nil
}

// Repo is repository r of the endpoint's registry.
func (e Endpoint) Repo(r string) (name.Repository, error) {
	var opts []name.Option
	if e.Registry.Scheme() == "http" {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(e.Registry.Name()+"/"+r, opts...)
}

func (e Endpoint) options(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithUserAgent("nora-replicate")}
	if e.Transport != nil {
		opts = append(opts, remote.WithTransport(e.Transport))
	}
	if e.Auth != nil {
		opts = append(opts, remote.WithAuth(e.Auth))
	} else {
		opts = append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	return opts
}
