//go:build !windows

package release

// Only Windows has an MSI install.
func readMSIRegistrationFromRegistry() (msiRegistration, bool) { return msiRegistration{}, false }
