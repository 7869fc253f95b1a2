// Command benchceiling is the start-up ceiling of the benchmarks: a bare
// net/http server that answers 200 to every request on the address given
// as its only argument, built the way the registry is. Its time from exec
// to the first 200 is what any Go HTTP server pays on this machine.
package main

import (
	"net/http"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		os.Stderr.WriteString("usage: benchceiling host:port\n")
		os.Exit(2)
	}
	err := http.ListenAndServe(os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	}))
	os.Stderr.WriteString(err.Error() + "\n")
	os.Exit(1)
}
