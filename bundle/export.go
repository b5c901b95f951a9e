package bundle

// CleanName is a tar entry name as references name it: what tar tools add in
// front ("./", "/") is stripped, so "./manifest.json" is still the manifest.
// Every reader of archives (list, verify, reorder's checks) compares names
// this way.
func CleanName(name string) string { return cleanName(name) }
