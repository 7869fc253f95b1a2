// Package mirror is nora's pull-through cache of upstream registries:
// which names belong to which upstream, how they are fetched, and how the
// fetched bytes become ordinary content of the Store.
//
// It owns the [[mirror.upstreams]] configuration, the routing of a
// repository name (and containerd's ?ns= parameter) to an upstream, the
// upstream clients (go-containerregistry's transport, which does Basic
// and the Docker token flow), and the sharing of concurrent fetches.
// storage owns the bytes: cached content is written with the Store's
// ordinary calls under its local name, <first host>/<upstream repo>, e.g.
// docker.io/library/nginx, so RBAC, GC and retention see it as any other
// repository.
//
// Invariants:
//   - An ns value is a lookup key among configured hosts, never an address
//     to dial: a request can only make the registry fetch from a
//     configured upstream URL.
//   - Upstream bytes are kept exactly, so digests never change. A blob is
//     committed only after storage verified its digest; a manifest only
//     after its bytes hash to the digest asked for (or, by tag, to the one
//     upstream announced).
//   - The client's own credentials are never sent upstream; only the
//     upstream's configured credentials are.
//   - A blob the Store holds for other repositories is linked into a
//     mirrored one, instead of downloaded again, only after a HEAD
//     upstream shows that repository has it: a digest alone never makes
//     local bytes readable through a mirrored name.
//   - Concurrent requests for one blob or one manifest share one upstream
//     fetch. Late joiners wait for it to finish, then read the cache: they
//     do not stream what has arrived so far. A fetch runs on a context
//     detached from the request that started it, so a client that leaves
//     does not cancel a fetch others wait on; the fetch ends with its own
//     timeout.
//   - Local repositories win over the default upstream: a name that exists
//     locally is never fetched through it.
//   - Eviction (an upstream's max_size, and [mirror] max_size over all of
//     them) deletes whole images, least recently used first, through GC's
//     collection primitives, which re-check in their write transactions;
//     it never takes an image used within evictAfter or a repository
//     whose blob a request is reading or fetching.
package mirror
