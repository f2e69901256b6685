package meter

// RequestWanted is the 开机标识 / 关机标识 byte of a sign-in or sign-out
// request (0x00E0, 0x00E3) that asks the terminal for the driver's
// identity.
const RequestWanted byte = 0x90

// Identity is who the terminal says is driving: the fields of its answer
// to a sign-in or sign-out request. Longer strings are cut to the field.
type Identity struct {
	CompanyLicence string // 经营许可证号, up to 16 ASCII characters
	DriverLicence  string // 从业资格证号, up to 19 ASCII characters
	Plate          string // 车牌号: 6 ASCII characters, no province character (see PlateTail)
}

// PlateTail returns the last six ASCII characters of a full plate such as
// 粤B12345 ("B12345"), which is what the meter's 6-byte plate field holds.
// Non-ASCII characters (the province) are skipped.
func PlateTail(plate string) string {
	var ascii []byte
	for _, r := range plate {
		if r > 0 && r < 0x80 {
			ascii = append(ascii, byte(r))
		}
	}
	if len(ascii) > plateLen {
		ascii = ascii[len(ascii)-plateLen:]
	}
	return string(ascii)
}

// requestAnswer builds the answer to a sign-in or sign-out request: the
// identity the Identity function gives, or, without one (the meter reads
// the driver's card itself), zero-filled identity fields and 0x90. A
// terminal that knows no driver refuses with 0xFF.
func (l *Link) requestAnswer(swipe BCDTime) RequestAnswer {
	a := RequestAnswer{SwipeTime: swipe, Result: ResultOK}
	if l.cfg.Identity == nil {
		return a
	}
	id, ok := l.cfg.Identity()
	if !ok {
		a.Result = ResultFailed
		return a
	}
	a.CompanyLicence, a.DriverLicence, a.Plate = id.CompanyLicence, id.DriverLicence, id.Plate
	return a
}
