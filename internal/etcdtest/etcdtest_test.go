//go:build unix

package etcdtest

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A 3-member cluster of real etcd processes, through client/v3: it
// keeps committing with one member killed (its leader, so that the other
// two elect one), refuses writes within the caller's deadline once two
// are gone (no quorum), still serves a serializable read from the
// survivor, and commits again once a killed member is restarted.
func TestClusterQuorum(t *testing.T) {
	c := Start(t, 3)
	t.Logf("etcd %s, members at %v", c.Version, c.Endpoints())
	cli := c.Client(t)
	put(t, cli, "k", "1")
	if got := get(t, cli, "k"); got != "1" {
		t.Fatalf("k = %q, want 1", got)
	}

	leader := c.leader(t, cli)
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	if leader.PID() != 0 {
		t.Fatalf("member %s still has a process after Kill", leader.Name)
	}
	put(t, cli, "k", "2") // the two others elect a leader and commit
	if got := get(t, cli, "k"); got != "2" {
		t.Fatalf("k = %q after one member was killed, want 2", got)
	}

	var survivor, second *Member
	for _, m := range c.Members {
		switch {
		case m == leader:
		case second == nil:
			second = m
		default:
			survivor = m
		}
	}
	if err := second.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := cli.Put(ctx, "k", "3")
	cancel()
	if err == nil {
		t.Fatal("a put committed with 1 member of 3 alive")
	}
	t.Logf("put without quorum: %v", err)
	// The survivor still answers from its own state, without a quorum:
	// what a standby replica can read while etcd is down.
	one := clientOf(t, survivor)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := one.Get(ctx, "k", clientv3.WithSerializable())
	cancel()
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("serializable read from the survivor: %v %v, want k = 2", resp, err)
	}

	if err := second.Restart(); err != nil {
		t.Fatal(err)
	}
	put(t, cli, "k", "4")
	if got := get(t, cli, "k"); got != "4" {
		t.Fatalf("k = %q after quorum returned, want 4", got)
	}
}

// Without a usable binary, Binary says which and why (Start skips with
// that message).
func TestBinaryMissing(t *testing.T) {
	t.Setenv(BinaryEnv, "/nonexistent/etcd")
	if _, _, err := Binary(); err == nil || !strings.Contains(err.Error(), "/nonexistent/etcd") {
		t.Fatalf("Binary with %s=/nonexistent/etcd: %v", BinaryEnv, err)
	}
	notEtcd := t.TempDir() + "/etcd"
	if err := os.WriteFile(notEtcd, []byte("#!/bin/sh\necho 'etcd Version: 3.3.25'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinaryEnv, notEtcd)
	if _, _, err := Binary(); err == nil || !strings.Contains(err.Error(), "3.3.25") {
		t.Fatalf("Binary of an etcd 3.3: %v, want it refused by version", err)
	}
}

// Pause and Resume stop and continue the member's process.
func TestPause(t *testing.T) {
	c := Start(t, 1)
	m := c.Members[0]
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	// The signal is delivered asynchronously: wait, boundedly, for the
	// process to show it.
	state := procState(t, m.PID())
	for deadline := time.Now().Add(5 * time.Second); state != "T" && time.Now().Before(deadline); state = procState(t, m.PID()) {
		time.Sleep(10 * time.Millisecond)
	}
	if state != "T" {
		t.Fatalf("paused member in state %q 5 s after SIGSTOP, want T (stopped)", state)
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	put(t, c.Client(t), "k", "v")
}

// procState is the state letter of pid in /proc/pid/stat, after the
// process name's closing parenthesis.
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no /proc: cannot read a process state here")
	}
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		t.Fatalf("unreadable %q", s)
	}
	return s[i+2 : i+3]
}

// put writes k = v, asking again until it commits (a leader election
// takes a second or two) or 30 s pass.
func put(t *testing.T, cli *clientv3.Client, k, v string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cli.Put(ctx, k, v)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s = %s not committed within 30 s: %v", k, v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get is a linearizable read of k.
func get(t *testing.T, cli *clientv3.Client, k string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, k)
	if err != nil {
		t.Fatalf("get %s: %v", k, err)
	}
	if len(resp.Kvs) != 1 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// leader is the member that is etcd's raft leader now.
func (c *Cluster) leader(t *testing.T, cli *clientv3.Client) *Member {
	t.Helper()
	for _, m := range c.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, m.ClientURL)
		cancel()
		if err != nil {
			t.Fatalf("status of %s: %v", m.Name, err)
		}
		if st.Header.MemberId == st.Leader {
			return m
		}
	}
	t.Fatal("no member says it is the leader")
	return nil
}

// clientOf is a client of member m alone, closed at cleanup.
func clientOf(t *testing.T, m *Member) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
