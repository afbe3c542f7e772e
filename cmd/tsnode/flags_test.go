package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateCLIDoc = flag.Bool("update", false, "rewrite docs/CLI.md from the commands' -h output")

// helpCommands are the commands whose -h output docs/CLI.md holds.
var helpCommands = [][]string{
	{},
	{"--role", "server"}, {"--role", "verifier"}, {"--role", "witness"}, {"--role", "requester"},
	{"stamp"}, {"relay"},
	{"keygen"}, {"id"}, {"verify"}, {"upgrade"}, {"log"}, {"log", "check"}, {"log", "backup"},
	{"bench"}, {"tsa", "cert"}, {"version"},
}

const cliDocHeader = `# tsnode command line

The exact ` + "`-h`" + ` output of every role and command; the README says what
they are for. Generated: after changing a flag, run

    go test ./cmd/tsnode -run TestCLIDoc -update

TestCLIDoc fails when this file is not what the commands print.
`

// cliDoc runs each help command in this process and writes its output.
func cliDoc(t *testing.T) string {
	var doc strings.Builder
	doc.WriteString(cliDocHeader)
	for _, c := range helpCommands {
		args := append(slices.Clone(c), "-h")
		var out bytes.Buffer
		if code := run(args, &out, &out); code != 0 {
			t.Fatalf("tsnode %v: exit %d\n%s", args, code, out.String())
		}
		fmt.Fprintf(&doc, "\n## tsnode %s\n\n```text\n%s\n```\n", strings.Join(args, " "), strings.TrimRight(out.String(), "\n"))
	}
	return doc.String()
}

// TestCLIDoc checks that docs/CLI.md is the commands' help of today.
func TestCLIDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "CLI.md")
	want := cliDoc(t)
	if *updateCLIDoc {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("docs/CLI.md is stale: run go test ./cmd/tsnode -run TestCLIDoc -update and commit it")
	}
}

// listedFlag is a flag line of a help text.
var listedFlag = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// The help of each role and subcommand lists exactly the flags it takes:
// each one parses, and every flag of another role is refused, naming
// the commands that take it.
func TestRoleHelpListsItsOwnFlags(t *testing.T) {
	owners := flagOwners()
	for _, c := range roleCommands {
		t.Run(c.label(), func(t *testing.T) {
			var help bytes.Buffer
			c.printHelp(&help)
			if !strings.HasPrefix(help.String(), "Usage: tsnode "+c.label()) {
				t.Errorf("help does not start with its usage line:\n%s", help.String())
			}
			var listed []string
			for _, m := range listedFlag.FindAllStringSubmatch(help.String(), -1) {
				listed = append(listed, m[1])
			}
			var f roleFlags
			fs := c.flagSet(&f)
			var taken []string
			fs.VisitAll(func(fl *flag.Flag) {
				if fl.Name != "role" {
					taken = append(taken, fl.Name)
				}
			})
			slices.Sort(listed)
			if !slices.Equal(listed, taken) {
				t.Errorf("help lists %v, the command takes %v", listed, taken)
			}
			base := []string{c.sub}
			if c.sub == "" {
				base = []string{"--role", c.role}
			}
			for _, name := range taken {
				fl := fs.Lookup(name)
				arg := "--" + name
				if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
					arg += "=" + sampleValue(fl)
				}
				_, err := parseRole(c.sub, append(slices.Clone(base), arg), &bytes.Buffer{}, &bytes.Buffer{})
				if err != nil && (strings.Contains(err.Error(), " is for ") || strings.Contains(err.Error(), "not defined") || strings.Contains(err.Error(), "invalid value")) {
					t.Errorf("%s refused: %v", arg, err)
				}
			}
			for name, by := range owners {
				if slices.Contains(taken, name) {
					continue
				}
				_, err := parseRole(c.sub, append(slices.Clone(base), "--"+name), &bytes.Buffer{}, &bytes.Buffer{})
				want := fmt.Sprintf("--%s is for %s", name, strings.Join(by, ", "))
				if err == nil || !strings.HasSuffix(err.Error(), want) {
					t.Errorf("--%s of another role: %v, want %q", name, err, want)
				}
			}
		})
	}
}

// sampleValue is a value fl's flag parses: its default, or a word.
func sampleValue(fl *flag.Flag) string {
	if fl.DefValue == "" || fl.DefValue == "[]" {
		return "x"
	}
	return fl.DefValue
}

func TestRoleArg(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "server"}, "server"},
		{[]string{"--keys", "k", "-role=verifier"}, "verifier"},
		{[]string{"--id", "1000", "-role", "requester", "--file", "f"}, "requester"},
		{[]string{"--role=server", "--role", "verifier"}, "verifier"},
		{[]string{"--keys", "k"}, ""},
		{[]string{"--role"}, ""},
		{[]string{"--", "--role", "server"}, ""},
	} {
		if got := roleArg(tc.args); got != tc.want {
			t.Errorf("roleArg(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
