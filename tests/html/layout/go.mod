module example.com/smallstep/certificates

go 1.22
