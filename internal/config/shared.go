package config

// The checks taxi-gateway shares with the agent: its [wechatpay] section
// holds the same keys, and its certificates name the same plates.

// Check validates the wechatpay section alone, naming each key
// "wechatpay.…", and returns its problems (nil when none).
func (w WeChatPay) Check() Problems {
	var p Problems
	w.validate(&p)
	if len(p) == 0 {
		return nil
	}
	p.sort()
	return p
}

// PlateValid reports whether s is a full plate with its province
// character, as vehicle.plate_number must be (e.g. 粤B12345, 粤BD12345).
func PlateValid(s string) bool { return platePattern.MatchString(s) }
