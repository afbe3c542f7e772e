package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

// go-libp2p logs through log/slog (gologshim); without this, its lines
// bypass go-log's format and levels and are written by a slog handler of
// their own. It must run before libp2p's first log line.
func init() {
	gologshim.SetDefaultHandler(logging.SlogHandler())
}

// cliLog writes tsnode's own fatal error in JSON mode, so that stderr
// stays one JSON object a line.
var cliLog = logging.Logger("tsnode")

// logJSON is set once setupLogging chose JSON.
var logJSON bool

// logFlags are --log-level (where a command has it) and --log-format.
type logFlags struct {
	fs     *flag.FlagSet
	level  *string
	format string
}

// addLogFlags adds --log-format, and --log-level into level if withLevel;
// *level is the default level of tsnode's own loggers.
func addLogFlags(fs *flag.FlagSet, level *string, withLevel bool) *logFlags {
	l := &logFlags{fs: fs, level: level}
	if withLevel {
		fs.StringVar(level, "log-level", *level, "log level of tsnode's own logs (debug, info, warn, error); wins over $GOLOG_LOG_LEVEL")
	}
	fs.StringVar(&l.format, "log-format", "text", "log lines on stderr as text or json; wins over $GOLOG_LOG_FMT")
	return l
}

// setup applies the flags, with go-log's environment where a flag was
// not given.
func (l *logFlags) setup() error {
	given := map[string]bool{}
	l.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return setupLogging(*l.level, given["log-level"], l.format, given["log-format"], os.Getenv)
}

// setupLogging sends every log line to go-log's outputs (stderr unless
// GOLOG_OUTPUT or GOLOG_FILE say otherwise) in one format: the flag's,
// else GOLOG_LOG_FMT's (json, nocolor, color), else text. Levels:
// libp2p's and every other subsystem's at warn, tsnode's (tsnode/*) at
// level; GOLOG_LOG_LEVEL ("LEVEL,subsystem=LEVEL,...") changes them, a
// bare level tsnode's too unless --log-level was given; "tsnode=LEVEL"
// names all of tsnode's.
func setupLogging(level string, levelGiven bool, format string, formatGiven bool, getenv func(string) string) error {
	cfg := logging.GetConfig() // outputs and labels, from the environment
	var err error
	if cfg.Format, err = logFormat(format, formatGiven, getenv("GOLOG_LOG_FMT")); err != nil {
		return err
	}
	if _, err := logging.Parse(level); err != nil {
		return usageErr("--log-level %q: want debug, info, warn or error", level)
	}
	tsnodeLevel := level
	cfg.Level = logging.LevelWarn
	subs := map[string]logging.LogLevel{}
	var tsnodeSubs []string // name=level for tsnode's subsystems, applied last
	if env := getenv("GOLOG_LOG_LEVEL"); env != "" {
		for _, kv := range strings.Split(env, ",") {
			name, lv, named := strings.Cut(kv, "=")
			if !named {
				lv = name
			}
			parsed, err := logging.Parse(lv)
			if err != nil {
				return usageErr("GOLOG_LOG_LEVEL %q: bad level %q (want debug, info, warn or error)", env, lv)
			}
			switch {
			case !named:
				cfg.Level = parsed
				if !levelGiven {
					tsnodeLevel = lv
				}
			case name == "tsnode" || strings.HasPrefix(name, "tsnode/"):
				if !levelGiven {
					tsnodeSubs = append(tsnodeSubs, name, lv)
				}
			default:
				subs[name] = parsed
			}
		}
	}
	cfg.SubsystemLevels = subs
	logging.SetupLogging(cfg)
	if err := logging.SetLogLevelRegex("^tsnode/", tsnodeLevel); err != nil {
		return err
	}
	for i := 0; i < len(tsnodeSubs); i += 2 {
		name, lv := tsnodeSubs[i], tsnodeSubs[i+1]
		if name == "tsnode" {
			err = logging.SetLogLevelRegex("^tsnode/", lv)
		} else {
			err = logging.SetLogLevel(name, lv)
		}
		if err != nil {
			return usageErr("GOLOG_LOG_LEVEL: %s=%s: %v", name, lv, err)
		}
	}
	_ = logging.SetLogLevel("tsnode", "error") // cliLog: the final error, always
	logJSON = cfg.Format == logging.JSONOutput
	return nil
}

// logFormat is the format flag's, else the environment's, else text.
func logFormat(flagValue string, given bool, env string) (logging.LogFormat, error) {
	switch {
	case flagValue == "json" && given:
		return logging.JSONOutput, nil
	case flagValue == "text" && given:
		return logging.PlaintextOutput, nil
	case given || (flagValue != "text" && flagValue != "json"):
		return 0, usageErr("--log-format %q: want text or json", flagValue)
	}
	switch env {
	case "json":
		return logging.JSONOutput, nil
	case "color":
		return logging.ColorizedOutput, nil
	case "", "nocolor", "text":
		return logging.PlaintextOutput, nil
	}
	return 0, usageErr("GOLOG_LOG_FMT %q: want json, nocolor or color", env)
}

// printError writes the command's final error: a JSON log line in JSON
// mode, else "tsnode: err".
func printError(stderr io.Writer, err error) {
	if logJSON {
		cliLog.Error(err.Error())
		return
	}
	fmt.Fprintf(stderr, "tsnode: %v\n", err)
}

func ptr(s string) *string { return &s }
