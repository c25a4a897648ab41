module dwcap

go 1.19
