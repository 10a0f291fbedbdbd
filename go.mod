module github.com/latentad/latentad

go 1.26
