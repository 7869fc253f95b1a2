package main

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestE2EAuthLoginKeepsAnonymousRights: bob has no rule for public/**, but
// anonymous callers may pull there, so logged in he may too.
func TestE2EAuthLoginKeepsAnonymousRights(t *testing.T) {
	s := startAuthServer(t)
	img := ociImage(t)
	ref, _ := name.ParseReference(s.host()+"/public/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})); err != nil {
		t.Fatalf("remote.Write as alice = %v", err)
	}
	pullWhole(t, ref, img, remote.WithAuth(authn.Anonymous))
	pullWhole(t, ref, img, remote.WithAuth(&authn.Basic{Username: "bob", Password: "bob-secret"}))
}
