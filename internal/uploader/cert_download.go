package uploader

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"time"

	"taxi-agent/internal/backoff"
	"taxi-agent/internal/wechatpay"
)

// DownloadStatus is the platform-certificate downloader's state.
type DownloadStatus struct {
	StoreFile   string    `json:"store_file"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Downloads   uint64    `json:"downloads"`
}

// An answer with an unknown serial makes the downloader fetch the
// certificates at once (a rotation), but the same serial at most once per
// serialRefreshGap and at most serialBurst such downloads per
// serialBurstWindow, so that answers with made-up serials cannot make the
// terminal hammer the download API.
const (
	serialRefreshGap  = 10 * time.Minute
	serialBurst       = 3
	serialBurstWindow = time.Minute
	maxSerialsTried   = 64
)

// newDownloader sets up the certificate downloader and returns the stored
// set (none when there is no store yet, or it cannot be read: the next
// download replaces it).
func (a *DirectAuth) newDownloader(c DirectAuthConfig) ([]*x509.Certificate, error) {
	if err := checkSecretFile(c.APIv3KeyFile); err != nil {
		return nil, fmt.Errorf("load apiv3 key: %w", err)
	}
	key, err := wechatpay.ReadAPIv3Key(c.APIv3KeyFile)
	if err != nil {
		return nil, err
	}
	if c.CertStoreFile == "" {
		return nil, fmt.Errorf("load direct auth: %w: a certificate store file is required with the APIv3 key", ErrConfig)
	}
	hc, err := newHTTPClient(Config{CAFile: c.CAFile, AttemptTimeout: DefaultAttemptTimeout}, &wireCounter{}, nil)
	if err != nil {
		return nil, fmt.Errorf("load direct auth: %w", err)
	}
	a.dl, err = wechatpay.NewCertDownloader(wechatpay.DownloaderConfig{
		BaseURL: c.BaseURL, HTTPClient: hc, Signer: a.signer, APIv3Key: key, StoreFile: c.CertStoreFile,
		Resign:       func(req *http.Request) error { return a.Sign(req.Context(), req, nil) },
		Verify:       a.verifyDownloadAnswer,
		AcceptSerial: a.AcceptSerial,
	})
	if err != nil {
		return nil, fmt.Errorf("load direct auth: %w", err)
	}
	a.dlState.StoreFile = c.CertStoreFile
	stored, err := a.dl.Stored()
	switch {
	case err == nil:
		a.log.Info("platform certificates loaded from the last download", "store", c.CertStoreFile, "count", len(stored))
		return stored, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	default:
		a.log.Warn("stored platform certificates unreadable; the next download replaces them", "store", c.CertStoreFile, "err", err)
		return nil, nil
	}
}

// verifyDownloadAnswer checks the download answer's signature with the
// keys known so far (an unknown serial is left to the downloader, which
// checks it with the downloaded set); a verified one teaches WeChat Pay's
// time.
func (a *DirectAuth) verifyDownloadAnswer(ctx context.Context, resp *http.Response, body []byte) error {
	ans, err := wechatpay.ReadSignedAnswer(resp.Header, body)
	if err != nil {
		return err
	}
	ks := a.keys.Load()
	if ks == nil {
		return fmt.Errorf("%w: %s", wechatpay.ErrUnknownSerial, ans.Serial)
	}
	if err := ks.Verify(ctx, ans.Serial, ans.Message, ans.Signature); err != nil {
		return err
	}
	a.clock.Learn(ans.Timestamp)
	return nil
}

// certRetry is the wait after a failed certificate download: capped
// exponential with full jitter, from 30 s to an hour.
var certRetry = backoff.Policy{Min: 30 * time.Second, Max: time.Hour}

// Run keeps the downloaded platform certificates fresh until ctx is done:
// a download at once, then every RefreshInterval; after a failure, again
// within minutes (capped exponential backoff with full jitter). Without an
// APIv3 key it returns at once.
func (a *DirectAuth) Run(ctx context.Context) {
	if a.dl == nil {
		return
	}
	failures := 0
	for {
		wait := a.interval
		if err := a.refresh(ctx, "scheduled"); err != nil {
			failures++
			wait = min(a.interval, certRetry.Delay(failures, rand.Float64()))
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// refreshForSerial downloads the certificates because an answer named an
// unknown serial, unless that serial was tried lately; it reports
// whether the set now has the serial.
func (a *DirectAuth) refreshForSerial(ctx context.Context, serial string) bool {
	now := time.Now()
	a.dlMu.Lock()
	last, tried := a.serialTried[serial]
	burst := len(a.serialTries) >= serialBurst && now.Sub(a.serialTries[0]) < serialBurstWindow
	recent := tried && now.Sub(last) < serialRefreshGap || burst
	if !recent {
		if a.serialTried == nil || len(a.serialTried) >= maxSerialsTried {
			a.serialTried = map[string]time.Time{}
		}
		a.serialTried[serial] = now
		a.serialTries = append(a.serialTries, now)
		if len(a.serialTries) > serialBurst {
			a.serialTries = a.serialTries[1:]
		}
	}
	a.dlMu.Unlock()
	if recent {
		return false
	}
	if err := a.refresh(ctx, "unknown serial "+serial); err != nil {
		return false
	}
	ks := a.keys.Load()
	return ks != nil && ks.Has(serial)
}

// refresh downloads the certificates and, on success, makes them part of
// the key set.
func (a *DirectAuth) refresh(ctx context.Context, why string) error {
	a.dlMu.Lock()
	a.dlState.LastAttempt = time.Now()
	a.dlMu.Unlock()
	certs, err := a.dl.Download(ctx)
	if err == nil {
		var set *wechatpay.KeySet
		set, err = wechatpay.LoadKeySet(a.files, certs, "downloaded")
		if err == nil {
			old := a.keys.Swap(set)
			if old == nil || !sameSerials(old.Keys(), set.Keys()) {
				a.log.Info("platform certificates downloaded", "why", why, "keys", serialsOf(set.Keys()))
			}
		}
	}
	a.dlMu.Lock()
	defer a.dlMu.Unlock()
	if err != nil {
		if a.dlState.LastError == "" {
			a.log.Warn("platform certificate download failed; answers are verified with the keys known so far",
				"why", why, "err", err)
		}
		a.dlState.LastError = err.Error()
		return err
	}
	if a.dlState.LastError != "" {
		a.log.Info("platform certificate download recovered")
	}
	a.dlState.LastError = ""
	a.dlState.LastSuccess = time.Now()
	a.dlState.Downloads++
	return nil
}

func serialsOf(ks []wechatpay.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Serial
	}
	return out
}

func sameSerials(a, b []wechatpay.Key) bool {
	sa, sb := serialsOf(a), serialsOf(b)
	if len(sa) != len(sb) {
		return false
	}
	for i := range sa {
		if sa[i] != sb[i] {
			return false
		}
	}
	return true
}

// AuthStatus is DirectAuth's state for status.
type AuthStatus struct {
	// Keys verify answers now.
	Keys []wechatpay.Key `json:"keys"`
	// AcceptSerial is sent as Wechatpay-Serial.
	AcceptSerial string `json:"accept_serial"`
	// ServerTime is WeChat Pay's time as learned.
	ServerTime wechatpay.ServerTimeStatus `json:"server_time"`
	// CorrectedSigning is true once requests are signed with WeChat Pay's
	// time (after a 401 about the timestamp).
	CorrectedSigning bool `json:"corrected_signing"`
	// Download is the certificate downloader's state, when configured.
	Download *DownloadStatus `json:"download,omitempty"`
}

// AuthStatus returns the keys, WeChat Pay's time and the downloader's
// state.
func (a *DirectAuth) AuthStatus() AuthStatus {
	st := AuthStatus{Keys: a.Keys(), AcceptSerial: a.AcceptSerial(), ServerTime: a.clock.Status(), CorrectedSigning: a.corrected.Load()}
	if a.dl != nil {
		a.dlMu.Lock()
		d := a.dlState
		a.dlMu.Unlock()
		st.Download = &d
	}
	return st
}
