//go:build !unix

package merklelog

// lockShared is a no-op where flock is not available: bbolt's own lock
// still keeps a second writer out.
func lockShared(string) (func(), error) { return func() {}, nil }
