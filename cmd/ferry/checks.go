package main

import (
	"github.com/rancher/ferry/bundle/verify"
	"github.com/rancher/ferry/registry"
)

// checkJSON is one check in the JSON of both `verify` and `manifest
// verify`, so one jq filter reads either: `.checks[] | select(.ok | not)`.
type checkJSON struct {
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	// Severity is "error" or "warning" for a failed check, "" for a passed one.
	Severity string `json:"severity,omitempty"`
	// Subject is what was checked: an archive entry, a blob, a platform.
	Subject string `json:"subject,omitempty"`
	// Image names the image (verify) or Platform and Digest the list entry
	// (manifest verify) the check belongs to.
	Image    string `json:"image,omitempty"`
	Platform string `json:"platform,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Message  string `json:"message,omitempty"`
}

// checkReport is the envelope both verify commands print.
type checkReport struct {
	SchemaVersion int `json:"schemaVersion"`
	// Subject is the file or reference verified.
	Subject  string      `json:"subject"`
	OK       bool        `json:"ok"`
	Errors   int         `json:"errors"`
	Warnings int         `json:"warnings"`
	Checks   []checkJSON `json:"checks"`
}

func archiveChecks(cs []verify.Check) []checkJSON {
	out := make([]checkJSON, len(cs))
	for i, c := range cs {
		out[i] = checkJSON{Check: c.Name, OK: c.OK, Severity: string(c.Severity), Subject: c.Entry, Image: c.Image,
			Expected: c.Expected, Found: c.Found, Message: c.Message}
	}
	return out
}

func indexChecks(cs []registry.Check) []checkJSON {
	out := make([]checkJSON, len(cs))
	for i, c := range cs {
		out[i] = checkJSON{Check: c.Name, OK: c.OK, Subject: c.Subject, Platform: c.Platform, Digest: c.Digest, Message: c.Detail}
		if !c.OK {
			out[i].Severity = string(verify.SeverityError)
		}
	}
	return out
}
