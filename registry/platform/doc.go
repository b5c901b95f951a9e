// Package platform is ferry's one set of platform rules, shared by image
// selection (registry) and verification (bundle/verify): targets as users
// write them (os/arch[/variant][:os.version], Windows release names), and
// how an image's platform is matched against one.
//
// Windows images are matched by build number (10.0.17763), taking the
// highest revision, because exact os.version matching breaks with every
// monthly patch. A Windows image without os.version (built FROM scratch)
// is neither a match nor a mismatch: ErrNoOSVersion.
//
// It imports no other ferry package, so anything may import it.
package platform
