package uploader

import "taxi-agent/internal/outbox"

// The real outbox is what the agent passes as the Store.
var _ Store = (*outbox.Outbox)(nil)
