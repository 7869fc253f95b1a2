package mirror

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"

	"github.com/nora-registry/nora/storage"
)

// Reuse links blob d, which the Store holds for other repositories, into
// rt's, once a HEAD upstream confirms that rt's upstream repository has
// it: the bytes are the same, so a base layer that many images share is
// downloaded once, not once per repository. It reports whether d is now
// linked; false with a nil error means d must be fetched. A blob the
// Store does not hold costs no request, and concurrent calls for one blob
// of one repository share one HEAD. A blob upstream does not have is
// storage.ErrBlobNotFound.
func (m *Mirror) Reuse(ctx context.Context, rt Route, d digest.Digest) (bool, error) {
	if _, ok := m.store.BlobSizes(ctx, []digest.Digest{d})[d]; !ok {
		return false, nil
	}
	linked, _, err := m.flights.do("reuse "+rt.Local+"@"+string(d), func() (string, error) {
		// Detached, as fetches are: others may wait on this check.
		ctx := context.WithoutCancel(ctx)
		// A caller that found d unlinked just before an earlier call
		// (or a fetch) linked it comes here after that call's flight
		// ended: no second HEAD for it, and a hit, not a revalidation.
		if _, err := m.store.StatBlob(ctx, rt.Local, d); err == nil {
			return "held", nil
		}
		if _, err := m.BlobSize(ctx, rt, d); err != nil {
			return "", err
		}
		// Any repository will do as the source: upstream just vouched
		// that rt's repository serves these bytes.
		_, err := m.store.MountAnyBlob(ctx, rt.Local, d, func(string) bool { return true })
		if errors.Is(err, storage.ErrBlobNotFound) {
			return "", nil // collected since the check: fetch it
		}
		return "linked", err
	})
	switch {
	case err != nil:
	case linked == "held":
		m.count(rt, resultHit)
	case linked != "":
		m.count(rt, resultRevalidated)
	}
	return linked != "" && err == nil, err
}
