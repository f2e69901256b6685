package punchsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"taxi-agent/internal/punch"
)

// Punch is the body of an accepted punch request.
type Punch struct {
	PlateNumber   string `json:"plate_number"`
	DriverLicense string `json:"driver_license"`
	EventTime     string `json:"event_time"`
	EventType     string `json:"event_type"`
	RegionID      int64  `json:"region_id"`
}

// EventTimePattern is the only event_time format the punch API takes.
var EventTimePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$`)

var punchFields = []string{"driver_license", "event_time", "event_type", "plate_number", "region_id"}

// parsePunch checks that body is a JSON object with exactly the five punch
// fields in their formats.
func parsePunch(body []byte) (Punch, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Punch{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return Punch{}, fmt.Errorf("trailing data after the JSON object")
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, punchFields) {
		return Punch{}, fmt.Errorf("fields are %v, want exactly %v", keys, punchFields)
	}

	var p Punch
	str := func(key string, dst *string) error {
		if err := json.Unmarshal(raw[key], dst); err != nil {
			return fmt.Errorf("%s is not a string", key)
		}
		if strings.TrimSpace(*dst) == "" {
			return fmt.Errorf("%s is empty", key)
		}
		return nil
	}
	for key, dst := range map[string]*string{
		"plate_number": &p.PlateNumber, "driver_license": &p.DriverLicense,
		"event_time": &p.EventTime, "event_type": &p.EventType,
	} {
		if err := str(key, dst); err != nil {
			return Punch{}, err
		}
	}
	if !EventTimePattern.MatchString(p.EventTime) {
		return Punch{}, fmt.Errorf("event_time %q does not match %s", p.EventTime, EventTimePattern)
	}
	if p.EventType != punch.SignIn && p.EventType != punch.SignOut {
		return Punch{}, fmt.Errorf("event_type %q is neither SIGN_IN nor SIGN_OUT", p.EventType)
	}
	region := string(raw["region_id"])
	id, err := strconv.ParseInt(region, 10, 64)
	if err != nil || id <= 0 {
		return Punch{}, fmt.Errorf("region_id %s is not a positive integer", region)
	}
	p.RegionID = id
	return p, nil
}
