module example.com/palisade/gofixture

go 1.19
