# Server CPU time (user + system, all processes and threads) per request, for each scenario's
# representative point: the work per request, meaningful even when the client is the bottleneck.
load "plots/common.gp"
set title "Server CPU per request, by scenario (lower is better)"
set ylabel "server CPU µs per request"
set logscale y 10
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
set key autotitle columnheader
# A bar that is missing says why ("not run", "failed", "zero", ...: cpu_per_request_marks.tsv, written by
# report.py, which sets has_marks when there is one).
if (exists("has_marks")) {
    plot for [i=2:words(servers)+1] sprintf("%s/cpu_per_request.tsv", datadir) using i:xtic(1), \
         sprintf("%s/cpu_per_request_marks.tsv", datadir) using 1:2:3 with labels rotate by 90 left offset 0,0.3 \
             font ",8" textcolor rgb "#b00000" notitle
} else {
    plot for [i=2:words(servers)+1] sprintf("%s/cpu_per_request.tsv", datadir) using i:xtic(1)
}
