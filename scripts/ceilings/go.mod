module benchceilings

go 1.26
