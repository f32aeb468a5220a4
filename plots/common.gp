# Settings every c10k-lab plot shares. report.py runs each plot script with these variables set:
#   datadir (the run's data/ directory), output (the image file), servers (space-separated names),
#   terminal (pngcairo or svg with size and font).
eval "set terminal " . terminal
set output output
set grid lc rgb "#dddddd"
set key outside right top
set border 3
set tics nomirror
set style line 1 lw 2 pt 7
set pointsize 1.2
