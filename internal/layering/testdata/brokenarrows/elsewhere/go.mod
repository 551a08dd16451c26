module example.com/elsewhere

go 1.26.0
