package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"
	"time"

	"taxi-agent/internal/config"
	"taxi-agent/internal/wechatpay"
)

func cmdCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", "-config FILE", stderr)
	path := fs.String("config", defaultConfigPath, "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if cfg.Gateway.Enabled() {
		_, err = fmt.Fprintf(stdout, "%s: ok (plate %s, region %d, meter %s at %d baud, outbox %s, gateway mode: %s with certificate %s, gateway trusted through %s)\n",
			*path, cfg.Vehicle.PlateNumber, cfg.Vehicle.RegionID, cfg.Meter.Device, cfg.Meter.Baud, cfg.Outbox.Path,
			cfg.Gateway.URL, cfg.Gateway.CertFile, cfg.Gateway.CAFile)
		return err
	}
	keys, notes, warnings, err := answerKeys(cfg, time.Now())
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if _, err := fmt.Fprintf(stdout, "%s: ok (plate %s, region %d, meter %s at %d baud, outbox %s, answers verified with %d key(s))\n",
		*path, cfg.Vehicle.PlateNumber, cfg.Vehicle.RegionID, cfg.Meter.Device, cfg.Meter.Baud, cfg.Outbox.Path, len(keys)); err != nil {
		return err
	}
	return printKeys(stdout, keys, notes, time.Now())
}

// answerKeys lists every key that will verify WeChat Pay's answers: the
// public key, each certificate of platform_cert_file, and the downloaded
// set when apiv3_key_file is set. A configured certificate already expired
// is a problem of wechatpay.platform_cert_file; a certificate expiring
// within 30 days is a warning; the notes say how the downloader stands.
func answerKeys(cfg config.Config, now time.Time) (keys []wechatpay.Key, notes, warnings []string, err error) {
	w := cfg.WeChatPay
	var stored []*x509.Certificate
	if w.APIv3KeyFile != "" {
		certs, err := wechatpay.LoadCertificates(cfg.CertStorePath())
		switch {
		case err == nil:
			stored = certs
			notes = append(notes, fmt.Sprintf("downloaded certificates (apiv3_key_file): %d stored in %s, refreshed every %s",
				len(certs), cfg.CertStorePath(), wechatpay.DefaultRefreshInterval))
		case errors.Is(err, fs.ErrNotExist):
			notes = append(notes, fmt.Sprintf("downloaded certificates (apiv3_key_file): none stored yet in %s; the agent downloads them at start", cfg.CertStorePath()))
		default:
			notes = append(notes, fmt.Sprintf("downloaded certificates (apiv3_key_file): %s unreadable (%v); the agent downloads them again at start", cfg.CertStorePath(), err))
		}
	}
	files := wechatpay.KeySetFiles{PublicKeyID: w.PublicKeyID, PublicKeyFile: w.PublicKeyFile, PlatformCertFile: w.PlatformCertFile}
	if files == (wechatpay.KeySetFiles{}) && len(stored) == 0 {
		return nil, notes, nil, nil
	}
	set, err := wechatpay.LoadKeySet(files, stored, cfg.CertStorePath())
	if err != nil {
		return nil, nil, nil, config.Problems{{Key: "wechatpay.public_key_file", Msg: err.Error(), Err: err}}
	}
	expired, expiring := set.Expiry(now)
	var p config.Problems
	for _, k := range expired {
		if k.Source == w.PlatformCertFile {
			p = append(p, config.Problem{Key: "wechatpay.platform_cert_file", Msg: fmt.Sprintf(
				"certificate %s expired on %s: remove it from %s (keep the current one)", k.Serial, day(k.NotAfter), w.PlatformCertFile)})
		} else {
			warnings = append(warnings, fmt.Sprintf("wechatpay.apiv3_key_file: downloaded certificate %s expired on %s; the next download replaces the set", k.Serial, day(k.NotAfter)))
		}
	}
	if len(p) > 0 {
		return nil, nil, nil, p
	}
	for _, k := range expiring {
		key := "wechatpay.platform_cert_file"
		if k.Source != w.PlatformCertFile {
			key = "wechatpay.apiv3_key_file"
		}
		warnings = append(warnings, fmt.Sprintf("%s: certificate %s expires on %s, within %d days: add the new one to %s, or migrate to the public key",
			key, k.Serial, day(k.NotAfter), int(wechatpay.ExpiryWarning.Hours()/24), orDownloads(k.Source, w.PlatformCertFile)))
	}
	return set.Keys(), notes, warnings, nil
}

func orDownloads(source, file string) string {
	if source == file {
		return file
	}
	return "the merchant platform (the downloader fetches it)"
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// printKeys writes one line per key, then the notes.
func printKeys(w io.Writer, keys []wechatpay.Key, notes []string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range keys {
		switch k.Kind {
		case wechatpay.KindPublicKey:
			fmt.Fprintf(tw, "  %s\t%s\tno expiry\n", k.Kind, k.Serial)
		default:
			fmt.Fprintf(tw, "  %s\t%s\tvalid until %s (%d days)\t%s\n", k.Kind, k.Serial, day(k.NotAfter),
				int(k.NotAfter.Sub(now).Hours()/24), k.Source)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintf(w, "  %s\n", n); err != nil {
			return err
		}
	}
	return nil
}
