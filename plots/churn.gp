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
# A bar that is missing says why ("not run", "failed", "zero", ...: churn_marks.tsv, written by
# report.py, which sets has_marks when there is one).
if (exists("has_marks")) {
    plot for [i=2:words(servers)+1] sprintf("%s/churn.tsv", datadir) using i:xtic(1), \
         sprintf("%s/churn_marks.tsv", datadir) using 1:2:3 with labels rotate by 90 left offset 0,0.3 \
             font ",8" textcolor rgb "#b00000" notitle
} else {
    plot for [i=2:words(servers)+1] sprintf("%s/churn.tsv", datadir) using i:xtic(1)
}
