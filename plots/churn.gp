# Requests per second at 64 connections, keep-alive (plaintext) against a new connection for every
# request (churn): what accept, connection setup and teardown cost each paradigm.
load "plots/common.gp"
set title "Keep-alive vs a new connection per request (64 connections)"
set ylabel "requests/s"
set yrange [0:*]
set format y "%.0s%c"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key autotitle columnheader
plot for [i=2:words(servers)+1] sprintf("%s/churn.tsv", datadir) using i:xtic(1)
