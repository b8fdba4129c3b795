package knative

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxDurationText bounds the input of ParseDuration; real durations are a dozen characters.
const maxDurationText = 64

// ParseDuration parses an ISO 8601 duration as Knative's DeliverySpec uses it: "PT0.2S",
// "PT1M30S", "P1DT2H", "P2W". Each number may have a decimal fraction ('.' or ','). Years and
// months are rejected (no fixed length), as are negative and empty durations and values
// beyond time.Duration's range.
func ParseDuration(s string) (time.Duration, error) {
	if len(s) > maxDurationText {
		return 0, fmt.Errorf("duration longer than %d characters", maxDurationText)
	}
	if !strings.HasPrefix(s, "P") {
		return 0, fmt.Errorf("duration %q: must start with P (ISO 8601, e.g. PT0.2S)", s)
	}
	rest := s[1:]
	if rest == "" || rest == "T" {
		return 0, fmt.Errorf("duration %q: has no components", s)
	}
	var total float64
	inTime := false
	seen := ""
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, fmt.Errorf("duration %q: T appears twice", s)
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return 0, fmt.Errorf("duration %q: T must be followed by hours, minutes or seconds", s)
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.' || rest[i] == ',') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("duration %q: expected a number at %q", s, rest)
		}
		if i == len(rest) {
			return 0, fmt.Errorf("duration %q: number %q has no unit", s, rest)
		}
		num := strings.Replace(rest[:i], ",", ".", 1)
		if strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
			return 0, fmt.Errorf("duration %q: malformed number %q", s, rest[:i])
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: malformed number %q", s, rest[:i])
		}
		unit := rest[i]
		var scale float64
		switch {
		case !inTime && unit == 'W':
			scale = float64(7 * 24 * time.Hour)
		case !inTime && unit == 'D':
			scale = float64(24 * time.Hour)
		case inTime && unit == 'H':
			scale = float64(time.Hour)
		case inTime && unit == 'M':
			scale = float64(time.Minute)
		case inTime && unit == 'S':
			scale = float64(time.Second)
		case !inTime && (unit == 'Y' || unit == 'M'):
			return 0, fmt.Errorf("duration %q: years and months are not supported (no fixed length)", s)
		default:
			return 0, fmt.Errorf("duration %q: unexpected unit %q", s, string(unit))
		}
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		if strings.Contains(seen, key+"|") {
			return 0, fmt.Errorf("duration %q: unit %s appears twice", s, string(unit))
		}
		seen += key + "|"
		total += v * scale
		rest = rest[i+1:]
	}
	if total > math.MaxInt64 || math.IsInf(total, 0) || math.IsNaN(total) {
		return 0, errors.New("duration " + strconv.Quote(s) + ": out of range")
	}
	return time.Duration(math.Round(total)), nil
}
