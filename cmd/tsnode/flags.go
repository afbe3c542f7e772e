package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

// A role or subcommand takes the flags of the groups it lists, and its
// help shows each group under its heading. A new role declares its
// groups in roleCommands, adding a group for the flags only it has.

// flagGroup registers a heading's flags into f; f.role is already set,
// so that defaults can depend on it.
type flagGroup struct {
	heading string
	add     func(fs *flag.FlagSet, f *roleFlags)
}

// roleCommand is one role (--role NAME) or one of the requester's
// subcommands (stamp, relay).
type roleCommand struct {
	role   string // server, verifier, requester
	sub    string // stamp or relay; empty for --role
	usage  string // what follows "tsnode" in the usage line
	about  string
	groups []flagGroup
}

// label names the command as a user types it: --role server, stamp.
func (c *roleCommand) label() string {
	if c.sub != "" {
		return c.sub
	}
	return "--role " + c.role
}

var (
	identityFlags = flagGroup{"Identity", func(fs *flag.FlagSet, f *roleFlags) {
		fs.StringVar(&f.id, "id", string(defaultIDs[f.role]), "this node's `ID` in the keys directory")
		fs.StringVar(&f.keys, "keys", defaultKeysDir, "keys directory `DIR`: private/<id>.pem and public/*.pem")
		fs.StringVar(&f.passFile, "passphrase-file", "", "read the private key's passphrase from this `file` (else $TSNODE_PASSPHRASE, else a prompt)")
		f.keyMode = addKeyModeFlag(fs, f.stderr)
	}}
	// listenFlags are a node's listen addresses and security protocols.
	listenFlags = flagGroup{"Network", func(fs *flag.FlagSet, f *roleFlags) {
		def := "none"
		switch f.role {
		case "server":
			def = fmt.Sprintf("TCP and QUIC on port %d", node.DefaultServerPort)
		case "verifier":
			def = fmt.Sprintf("TCP and QUIC on port %d", node.DefaultVerifierPort)
		case "witness":
			def = fmt.Sprintf("TCP and QUIC on port %d", node.DefaultWitnessPort)
		}
		fs.Var(&f.listen, "listen", "listen `multiaddr` (repeatable; default "+def+")")
		fs.StringVar(&f.security, "security", node.SecurityTLS, "security protocols offered, in preference order: tls, or tls,noise (Noise signs with the RSA key on every handshake, even a stranger's; requesters offer both)")
	}}
	// dialFlags are a requester's: it offers TLS, then Noise, and
	// listens on nothing unless told.
	dialFlags = flagGroup{"Network", func(fs *flag.FlagSet, f *roleFlags) {
		fs.Var(&f.listen, "listen", "listen `multiaddr` (repeatable; default none)")
	}}
	serverPeerFlags = flagGroup{"Peers", func(fs *flag.FlagSet, f *roleFlags) {
		fs.StringVar(&f.server, "server", "", "the server's `multiaddr` (/p2p/ optional)")
		addServerID(fs, f)
	}}
	verifierPeerFlags = flagGroup{"Peers", func(fs *flag.FlagSet, f *roleFlags) {
		fs.StringVar(&f.verifier, "verifier", "", "the verifier's `multiaddr` (/p2p/ optional)")
		fs.StringVar(&f.verifierID, "verifier-id", string(identity.VerifierID), "the verifier's `ID` in the identity directory")
	}}
	// relayPeerFlags: relay's server id is the authority the receipt
	// must be signed by.
	relayPeerFlags = flagGroup{"Peers", func(fs *flag.FlagSet, f *roleFlags) {
		verifierPeerFlags.add(fs, f)
		addServerID(fs, f)
	}}
	trustFlags = flagGroup{"Trust", func(fs *flag.FlagSet, f *roleFlags) {
		f.trust = addTrustFlag(fs, "accept only signatures of this authority `ID` (repeatable)")
	}}
	serverLogFlags = flagGroup{"Log and signing", func(fs *flag.FlagSet, f *roleFlags) {
		fs.StringVar(&f.data, "data", node.DefaultDataDir, "directory `DIR` of the durable Merkle log of issued stamps")
		fs.BoolVar(&f.init, "init", false, "create a new, empty log in --data even if the directory is not empty (without it, only into an empty or absent one); never next to a head file")
		fs.BoolVar(&f.publicLog, "public-log", false, "let any peer, in the identity directory or not, read the log (/tsnode/log/1.0.0) and nothing else: auditors need no enrolled key")
		fs.StringVar(&f.backupDir, "backup-dir", "", "on SIGUSR1, write a consistent backup of --data into a new folder of this `DIR`")
		fs.DurationVar(&f.maxWait, "max-wait", authority.DefaultMaxWait, "the longest a stamp waits for its tree head to start being signed (0: sign as soon as the previous head is signed; longer: fewer signatures, less CPU, more latency)")
		fs.IntVar(&f.maxBatch, "max-batch", authority.DefaultMaxBatch, "the most stamps one tree head covers")
		fs.DurationVar(&f.onlineKeyLifetime, "online-key-lifetime", authority.DefaultOnlineKeyLifetime, "sign tree heads with an ECDSA P-256 online key, kept in memory only, that the identity key delegates and replaces after this long (its window: a quarter longer); 0: the identity key signs every head (PROTOCOL.md §5.6)")
		fs.DurationVar(&f.clockTolerance, "clock-tolerance", authority.DefaultClockTolerance, "how far a stamp's time may run ahead of the clock; a clock further behind the last issued time pauses stamping (refused as clock-behind) until it catches up")
	}}
	verifierRelayFlags = flagGroup{"Relays", func(fs *flag.FlagSet, f *roleFlags) {
		f.maxDocument = protocol.DefaultMaxDocumentSize
		fs.Var(&f.maxDocument, "max-document", "refuse relayed documents larger than this `size` (bytes, or with KiB, MiB, GiB)")
		fs.StringVar(&f.store, "store", "", "keep each valid document with its receipt under this `DIR`")
	}}
	// stampFlags are how documents are stamped, for --role requester and
	// stamp.
	fileFlags = flagGroup{"Documents", func(fs *flag.FlagSet, f *roleFlags) {
		fs.Var(&f.files, "file", "document `PATH` to stamp and relay (repeatable)")
	}}
	stampFlags = flagGroup{"Documents", func(fs *flag.FlagSet, f *roleFlags) {
		fs.StringVar(&f.out, "out", "", "write receipts into this `DIR` (default: <file>.receipt next to each file)")
		fs.BoolVar(&f.oneShot, "oneshot", false, "prototype-style flow, one sealed exchange and one server signature per document (v1 receipts) instead of a stamp session")
		fs.IntVar(&f.parallel, "parallel", node.DefaultParallel, "how many documents to stamp and relay at once")
		addResultFlags(fs, f)
	}}
	relayFlags = flagGroup{"Documents", func(fs *flag.FlagSet, f *roleFlags) {
		fs.StringVar(&f.req.receipt, "receipt", "", "the receipt `file` of the document, written by an earlier stamp (required)")
		addResultFlags(fs, f)
	}}
	// serviceFlags are how a server or verifier is run and watched.
	serviceFlags = flagGroup{"Operations", func(fs *flag.FlagSet, f *roleFlags) {
		fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on http://`ADDR`/metrics, and /healthz and /readyz (e.g. 127.0.0.1:9400; off by default)")
		fs.DurationVar(&f.drainTimeout, "drain-timeout", node.DefaultDrainTimeout, "on SIGTERM or SIGINT, how long to finish the stamps and relays in progress before stopping (a second signal stops at once)")
		logFlagGroup.add(fs, f)
	}}
	logFlagGroup = flagGroup{"Operations", func(fs *flag.FlagSet, f *roleFlags) {
		f.logLevel = "info"
		f.logs = addLogFlags(fs, &f.logLevel, true)
	}}
)

func addServerID(fs *flag.FlagSet, f *roleFlags) {
	fs.StringVar(&f.serverID, "server-id", string(identity.ServerID), "the server's `ID` in the identity directory")
}

func addResultFlags(fs *flag.FlagSet, f *roleFlags) {
	fs.DurationVar(&f.timeout, "timeout", 0, "give up on one document after this `duration`, retries included (default: 2m plus 1s per MiB of the document)")
	fs.BoolVar(&f.req.json, "json", false, "print one JSON object per document on stdout (fields in README)")
}

// roleCommands are every role and the requester's subcommands.
var roleCommands = []*roleCommand{
	{role: "server", usage: "--role server [flags]",
		about:  "The timestamp authority: stamps hashes into its durable log and signs its tree heads.",
		groups: []flagGroup{identityFlags, listenFlags, serverLogFlags, checkpointFlags, serverTSAFlags, serviceFlags}},
	{role: "verifier", usage: "--role verifier [flags]",
		about:  "Checks the documents and receipts that requesters relay, and answers a verdict; with --cosign, witnesses too.",
		groups: []flagGroup{identityFlags, listenFlags, trustFlags, verifierRelayFlags, requireFlags, cosignFlags, serviceFlags}},
	{role: "witness", usage: "--role witness --server MADDR [--peer MADDR ...] [flags]",
		about:  "Follows the trusted authorities' tree heads, checks and cosigns them, and holds the evidence when one equivocates.",
		groups: []flagGroup{identityFlags, listenFlags, trustFlags, cosignFlags, serviceFlags}},
	{role: "requester", usage: "--role requester --server MADDR [--verifier MADDR] --file PATH ... [flags]",
		about:  "Stamps each --file, writes its receipt, and relays it to the verifier if one is given.",
		groups: []flagGroup{identityFlags, dialFlags, serverPeerFlags, verifierPeerFlags, trustFlags, fileFlags, stampFlags, requesterWitnessFlags, logFlagGroup}},
	{role: "requester", sub: "stamp", usage: "stamp --server MADDR [flags] FILE...",
		about:  "Stamps each FILE and writes its receipt, relaying nothing.",
		groups: []flagGroup{identityFlags, dialFlags, serverPeerFlags, trustFlags, stampFlags, stampTSAFlags, requesterWitnessFlags, logFlagGroup}},
	{role: "requester", sub: "relay", usage: "relay --verifier MADDR --receipt R [flags] FILE",
		about:  "Relays FILE with the receipt of an earlier stamp to the verifier, and prints its verdict.",
		groups: []flagGroup{identityFlags, dialFlags, relayPeerFlags, trustFlags, relayFlags, logFlagGroup}},
}

// findRoleCommand is the command of sub, or for --role the role named in
// args, wherever it is.
func findRoleCommand(sub string, args []string) (*roleCommand, error) {
	role := "requester"
	if sub == "" {
		role = roleArg(args)
		if _, ok := defaultIDs[role]; !ok {
			if role == "" {
				return nil, usageErr("give a subcommand (keygen, id, verify, stamp, ...) or --role server|verifier|witness|requester")
			}
			return nil, usageErr("--role %q: want server, verifier, witness or requester", role)
		}
	}
	for _, c := range roleCommands {
		if c.role == role && c.sub == sub {
			return c, nil
		}
	}
	panic("no command for role " + role + " " + sub)
}

// roleArg is the value of the last --role in args (-role, --role=X), or
// "". Flags after "--" are documents, not flags.
func roleArg(args []string) string {
	role := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "role" {
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				break
			}
			i++
			value = args[i]
		}
		role = value
	}
	return role
}

// flagSet is c's flags, registered into f, with no output of its own:
// errors are returned, and help is printHelp's.
func (c *roleCommand) flagSet(f *roleFlags) *flag.FlagSet {
	f.role = c.role
	if f.req == nil {
		f.req = &requestFlags{}
	}
	if f.stderr == nil {
		f.stderr = io.Discard
	}
	fs := flag.NewFlagSet("tsnode "+c.label(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.sub == "" {
		fs.StringVar(&f.role, "role", c.role, "")
	}
	for _, g := range c.groups {
		g.add(fs, f)
	}
	return fs
}

// printHelp writes the usage line, then each heading's flags with their
// defaults, as flag.PrintDefaults writes them.
func (c *roleCommand) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: tsnode %s\n\n%s\n", c.usage, c.about)
	var headings []string
	byHeading := map[string][]flagGroup{}
	for _, g := range c.groups {
		if byHeading[g.heading] == nil {
			headings = append(headings, g.heading)
		}
		byHeading[g.heading] = append(byHeading[g.heading], g)
	}
	for _, h := range headings {
		f := roleFlags{role: c.role, stderr: io.Discard, req: &requestFlags{}}
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		for _, g := range byHeading[h] {
			g.add(fs, &f)
		}
		fmt.Fprintf(w, "\n%s:\n", h)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprintf(w, "\nRun \"tsnode -h\" for every command.\n")
}

// flagOwners is, for every flag of any role or subcommand, the commands
// that take it, in the order of roleCommands.
func flagOwners() map[string][]string {
	owners := map[string][]string{}
	for _, c := range roleCommands {
		var f roleFlags
		c.flagSet(&f).VisitAll(func(fl *flag.Flag) {
			if fl.Name != "role" {
				owners[fl.Name] = append(owners[fl.Name], c.label())
			}
		})
	}
	return owners
}

// notForCommand turns the flag package's error for a flag c does not
// define into one that names the commands taking it.
func (c *roleCommand) notForCommand(err error) error {
	const undefined = "flag provided but not defined: -"
	_, name, ok := strings.Cut(err.Error(), undefined)
	if !ok {
		return err
	}
	if name == "role" {
		return usageErr("%s takes no --role (it runs a requester)", c.sub)
	}
	if owners := flagOwners()[name]; len(owners) > 0 && !slices.Contains(owners, c.label()) {
		return usageErr("--%s is for %s", name, strings.Join(owners, ", "))
	}
	return usageErr("%s%s (see tsnode %s -h)", undefined, name, c.label())
}

// parseRoleArgs parses args with c's flags, into f, and returns the
// positional arguments; help goes to stdout.
func (c *roleCommand) parseRoleArgs(f *roleFlags, args []string, stdout io.Writer) ([]string, error) {
	pos, err := parseInterspersed(c.flagSet(f), args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printHelp(stdout)
		return nil, err
	case err != nil:
		return nil, c.notForCommand(err)
	}
	return pos, nil
}
