module sregtest

go 1.19
