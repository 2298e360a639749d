package release

import "golang.org/x/sys/windows/registry"

func readMSIRegistrationFromRegistry() (msiRegistration, bool) {
	return readMSIRegistrationAt(registry.LOCAL_MACHINE, MSIRegistryKey)
}

func readMSIRegistrationAt(root registry.Key, path string) (msiRegistration, bool) {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return msiRegistration{}, false
	}
	defer k.Close()
	loc, _, err := k.GetStringValue("InstallLocation")
	if err != nil {
		return msiRegistration{}, false
	}
	code, _, _ := k.GetStringValue("ProductCode")
	return msiRegistration{InstallLocation: loc, ProductCode: code}, true
}
