package punchsim

import (
	"errors"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	good := `WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="abc",timestamp="1700000000",serial_no="AB12",signature="c2ln"`
	a, err := parseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	if a != (authorization{MchID: "1900000001", Nonce: "abc", Timestamp: 1700000000, SerialNo: "AB12", Signature: "c2ln"}) {
		t.Errorf("parsed %+v", a)
	}
	for _, bad := range []string{
		"",
		`WECHATPAY2-SHA256-RSA2048`,
		`Bearer mchid="1"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="abc",timestamp="1700000000",serial_no="AB12"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="abc",timestamp="soon",serial_no="AB12",signature="c2ln"`,
		`WECHATPAY2-SHA256-RSA2048 mchid=1900000001,nonce_str="abc",timestamp="1700000000",serial_no="AB12",signature="c2ln"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="abc",timestamp="1700000000",serial_no="AB12",signature="c2ln"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="abc",timestamp="1700000000",serial_no="AB12",signature="c2ln",extra="x"`,
	} {
		if _, err := parseAuthorization(bad); !errors.Is(err, errMalformed) {
			t.Errorf("parseAuthorization(%q) = %v, want errMalformed", bad, err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="abc",timestamp="1700000000",serial_no="AB12",signature="c2ln"`)
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid=""`)
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err == nil && (a.MchID == "" || a.Nonce == "" || a.SerialNo == "" || a.Signature == "") {
			t.Errorf("accepted %q with empty fields: %+v", h, a)
		}
	})
}

func FuzzParsePunch(f *testing.F) {
	f.Add(validBody)
	f.Add(`{"plate_number":1}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		p, err := parsePunch([]byte(body))
		if err != nil {
			return
		}
		if !EventTimePattern.MatchString(p.EventTime) || p.RegionID <= 0 || p.PlateNumber == "" || p.DriverLicense == "" {
			t.Errorf("accepted %q as %+v", body, p)
		}
	})
}
