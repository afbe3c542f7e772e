package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// profileEnv names a file to write a CPU profile of the whole run into,
// for benchmarks (scripts/bench-capacity.sh --profile): an environment
// variable rather than a flag, so that it reaches a server that `tsnode
// bench` or a script spawns, whatever its role's flags.
const profileEnv = "TSNODE_CPU_PROFILE"

// startProfile starts the CPU profile profileEnv asks for; the returned
// function ends it. A profile that cannot start is reported, not fatal.
func startProfile() func() {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tsnode: %s=%s: no CPU profile: %v\n", profileEnv, path, err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
