// Command tsnode is a peer-to-peer trusted-timestamping daemon.
//
//	tsnode keygen --id ID [--keys DIR] [--force | --rotate] [--passphrase-file F]
//	tsnode id [--keys DIR]
//	tsnode verify --receipt R [--keys DIR] [--trust ID ...] FILE
//	tsnode stamp --server MADDR [flags] FILE...
//	tsnode relay --verifier MADDR --receipt R [flags] FILE
//	tsnode --role server|verifier|witness|requester [flags]
//	tsnode version
//
// Run `tsnode help` for every flag.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes: 0 success, 1 a check or step failed, 2 bad usage.
const (
	exitFailed = 1
	exitUsage  = 2
)

// errUsage marks errors caused by the command line.
var errUsage = errors.New("usage")

func main() {
	stop := startProfile()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) == 0:
		usage(stderr)
		return exitUsage
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		usage(stdout)
		return 0
	case args[0] == "version" || args[0] == "--version" || args[0] == "-version":
		err = cmdVersion(args[1:], stdout, stderr)
	case args[0] == "keygen":
		err = cmdKeygen(args[1:], stdout, stderr)
	case args[0] == "id":
		err = cmdID(args[1:], stdout, stderr)
	case args[0] == "verify":
		err = cmdVerify(args[1:], stdout, stderr)
	case args[0] == "log":
		err = cmdLog(args[1:], stdout, stderr)
	case args[0] == "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case args[0] == "tsa":
		err = cmdTSA(args[1:], stdout, stderr)
	case args[0] == "upgrade":
		err = cmdUpgrade(args[1:], stdout, stderr)
	case args[0] == "stamp" || args[0] == "relay":
		err = cmdRole(args[0], args[1:], stdout, stderr)
	default:
		err = cmdRole("", args, stdout, stderr)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		printError(stderr, err)
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailed
	default:
		printError(stderr, err)
		return exitFailed
	}
}

// errReported means the failure was already printed.
var errReported = errors.New("failed")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseInterspersed parses flags that may come after positional
// arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func usage(w io.Writer) {
	fmt.Fprint(w, `tsnode: peer-to-peer trusted timestamping over libp2p

Usage:
  tsnode keygen --id ID [--keys DIR] [--force | --rotate] [--passphrase-file F]
  tsnode id [--keys DIR]
  tsnode verify --receipt R [--keys DIR] [--trust ID ...] [--witness ID ... --witnesses K] FILE
  tsnode verify --consistency P [--keys DIR] [--trust ID ...]
  tsnode verify --evidence F [--keys DIR] [--trust ID ...]
  tsnode log --server MADDR [--keys DIR] [--id ID] [--trust ID ...] [--from R1 [--to R2] [--out P] | --serial N] [--json]
  tsnode log check [--data DIR] [--keys DIR] [--server-id ID]
  tsnode log backup [--data DIR] --out DIR
  tsnode bench [--server MADDR | --tsa-url URL] [--keys DIR] [--flows F] [--duration D] [--inflight N | --rate R] [--json F]
  tsnode --role server    [--id server] [--keys DIR] [--listen MADDR ...] [--data DIR] [--init] [--max-wait D]
                          [--public-log] [--backup-dir DIR] [--metrics ADDR] [--drain-timeout D]
                          [--clock-tolerance D] [--security tls,noise] [--checkpoint-interval D]
                          [--tsa] [--http ADDR] [--tsa-key ecdsa-p256|identity] [--tsa-policy OID] [--tsa-cert-lifetime D]
  tsnode tsa cert [--id server] [--keys DIR] [--data DIR] [--tsa-key ecdsa-p256|identity] [--tsa-cert-lifetime D]
  tsnode --role verifier  [--id 2000] [--keys DIR] [--listen MADDR ...] [--store DIR] [--trust ID ...]
                          [--witness ID ... --witnesses K] [--cosign --server MADDR --data DIR]
                          [--metrics ADDR] [--drain-timeout D]
  tsnode --role witness   [--id 3000] [--keys DIR] [--listen MADDR ...] --server MADDR [--peer MADDR ...]
                          [--data DIR] [--trust ID ...] [--mdns] [--clock-tolerance D] [--metrics ADDR]
  tsnode --role requester [--id 1000] [--keys DIR] --server MADDR [--verifier MADDR]
                          --file PATH [--file PATH ...] [--out DIR] [--trust ID ...] [--json]
  tsnode stamp --server MADDR [--keys DIR] [--out DIR] [--json] [--witness ID ... --witnesses K] FILE...
  tsnode upgrade --receipt R --server MADDR --witness ID ... --witnesses K [--peer MADDR ...] [--out F]
  tsnode relay --verifier MADDR --receipt R [--keys DIR] [--json] FILE
  tsnode version          (or --version: module version, VCS revision, Go version)

Every command that logs takes --log-level and --log-format text|json.
The passphrase of a private key comes from --passphrase-file, else from
$TSNODE_PASSPHRASE, else from a no-echo prompt on the terminal.
Run "tsnode keygen -h", "tsnode --role server -h", ... for each flag
(all of them are in docs/CLI.md).
`)
}

func marshalIndent(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ") // only our own plain structs: cannot fail
	return append(b, '\n')
}
