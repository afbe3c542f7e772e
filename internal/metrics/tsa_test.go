package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The RFC 3161 metrics show every outcome of every transport at 0, then
// move by what they are told; the gauge is the certificate's end in Unix
// seconds.
func TestTSAMetricsMove(t *testing.T) {
	r := New()
	m := NewTSA(r)
	srv := httptest.NewServer(Handler(r.Gatherer(), nil))
	defer srv.Close()
	body := scrape(t, srv.URL)
	for _, want := range []string{
		`tsnode_rfc3161_requests_total{outcome="granted",via="http"} 0`,
		`tsnode_rfc3161_requests_total{outcome="badAlg",via="libp2p"} 0`,
		`tsnode_rfc3161_requests_total{outcome="unacceptedPolicy",via="http"} 0`,
		`tsnode_rfc3161_requests_total{outcome="systemFailure",via="libp2p"} 0`,
		`tsnode_rfc3161_cert_renewals_total{result="failed"} 0`,
		`tsnode_rfc3161_request_seconds_count{via="libp2p"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("a fresh scrape lacks %q", want)
		}
	}
	m.Answered("http", TSAGranted, 3*time.Millisecond)
	m.Answered("http", TSAGranted, time.Millisecond)
	m.Answered("libp2p", "badAlg", time.Millisecond)
	end := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	m.SigningCertificate(end)
	m.Renewal(true)
	m.Renewal(false)
	m.Renewal(false)
	body = scrape(t, srv.URL)
	for _, want := range []string{
		`tsnode_rfc3161_requests_total{outcome="granted",via="http"} 2`,
		`tsnode_rfc3161_requests_total{outcome="badAlg",via="libp2p"} 1`,
		`tsnode_rfc3161_requests_total{outcome="granted",via="libp2p"} 0`,
		`tsnode_rfc3161_request_seconds_count{via="http"} 2`,
		`tsnode_rfc3161_request_seconds_count{via="libp2p"} 1`,
		`tsnode_rfc3161_signing_cert_not_after_timestamp_seconds 1.893553445e+09`,
		`tsnode_rfc3161_cert_renewals_total{result="renewed"} 1`,
		`tsnode_rfc3161_cert_renewals_total{result="failed"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("after the answers, the scrape lacks %q", want)
		}
	}
	if end.Unix() != 1893553445 {
		t.Fatalf("the expected gauge is not %v's Unix time", end)
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
