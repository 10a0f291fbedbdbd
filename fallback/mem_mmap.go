//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package fallback

import "syscall"

// sysMap returns size bytes of zeroed anonymous memory, or nil if the OS refuses (the
// caller then uses the heap).
func sysMap(size int) []byte {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return mem
}

func sysUnmap(mem []byte) error { return syscall.Munmap(mem) }
