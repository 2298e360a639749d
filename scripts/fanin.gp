# Draws the fan-in figure of `make soak` (cmd/tentacle TestLoadFanIn): latency
# of a call relayed to one polling agent against how many agents are connected
# to the same `tentacle remote serve`. Run as
#   gnuplot -e "in='dist/soak/fanin.dat'; out='dist/soak/fanin.png'" scripts/fanin.gp
set terminal pngcairo size 800,500 noenhanced
set output out
set title "Relayed call to one polling agent vs agents connected to remote serve"
set xlabel "polling agents connected"
set ylabel "latency (ms)"
set key top left
set grid
set yrange [0:*]
plot in using 1:2 with linespoints title "p50", \
     in using 1:3 with linespoints title "p99"
