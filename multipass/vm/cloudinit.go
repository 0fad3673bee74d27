package vm

// cloudInit is the user data of a VM the backend launches. iptables is the
// only thing hopcheck needs that an Ubuntu cloud image may lack; it comes
// from the Ubuntu archive, and nothing else is fetched from the internet.
// Multipass waits for cloud-init to finish before launch returns.
const cloudInit = `#cloud-config
# Written by hopcheck for its Multipass VM.
package_update: true
packages:
  - iptables
`

// CloudInit returns the cloud-init user data that Run and Up launch a
// missing VM with.
func CloudInit() []byte { return []byte(cloudInit) }
