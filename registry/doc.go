// Package registry serves the OCI Distribution API v1.1 (the /v2/ routes)
// over a storage.Store, plus /healthz and /readyz.
//
// Routes are declared in routes.go. Repository names contain slashes, so a
// small middleware (names) finds the fixed suffix from the end of the path,
// validates name and reference, and hands ServeMux the name as one escaped
// segment. Handlers return errors; wrap turns them into the OCI error
// envelope (errors.go), mapping storage sentinels to codes, so no handler
// picks a status for an error by hand.
//
// Manifests are parsed and validated here (manifest_parse.go); the store
// checks their references when it commits them.
package registry
