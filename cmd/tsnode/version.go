package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// buildVersion is what `tsnode version` reports, read from the build
// information the Go toolchain embeds in every binary.
type buildVersion struct {
	Module   string // the main module's version: a tag, a pseudo-version, or (devel)
	Revision string // the VCS commit, "" when the build did not record it
	Dirty    bool   // the working tree had changes when it was built
	Time     string // the commit's time, "" when not recorded
	Go       string // the toolchain that built it
	Platform string // GOOS/GOARCH
}

// readBuildVersion turns build information into a buildVersion. ok is
// false when the binary carries none (then only Go and Platform are set).
func readBuildVersion(bi *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Module: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v.Module = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Dirty = s.Value == "true"
		}
	}
	return v
}

// write prints the version, one field a line. Fields the build did not
// record say so rather than guessing: `go test`, `go run` outside a
// checkout and -buildvcs=false record no revision.
func (v buildVersion) write(w io.Writer) {
	rev, vcsTime := "(unknown: built without VCS information)", "(unknown)"
	if v.Revision != "" {
		rev = v.Revision
		if v.Dirty {
			rev += "+dirty"
		}
	}
	if v.Time != "" {
		vcsTime = v.Time
	}
	fmt.Fprintf(w, "tsnode %s\n", v.Module)
	fmt.Fprintf(w, "  revision  %s\n", rev)
	fmt.Fprintf(w, "  vcs time  %s\n", vcsTime)
	fmt.Fprintf(w, "  go        %s %s\n", v.Go, v.Platform)
}

// cmdVersion is `tsnode version` and `tsnode --version`.
func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode version", stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("version takes no arguments, got %q", pos)
	}
	readBuildVersion(debug.ReadBuildInfo()).write(stdout)
	return nil
}
