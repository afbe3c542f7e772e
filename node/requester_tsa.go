package node

import (
	"context"
	"errors"

	"github.com/tsnode/tsnode/node/tsa"
)

// RequestRFC3161 sends the DER TimeStampReq der to the server over
// /tsnode/rfc3161/1.0.0 (dialing it first if need be) and returns its
// DER TimeStampResp, unchecked. It is not retried once sent: the server
// may have logged a token for it.
func (r *Requester) RequestRFC3161(ctx context.Context, der []byte) ([]byte, error) {
	if r.server.ID == "" {
		return nil, errors.New("no server given")
	}
	if err := r.dialServer(ctx); err != nil {
		return nil, err
	}
	return tsa.Request(ctx, r.host, r.server.ID, der)
}
