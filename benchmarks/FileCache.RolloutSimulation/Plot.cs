using ScottPlot;

namespace FileCache.RolloutSimulation;

/// <summary>Draws what people would rather look at than read: hosts warm over time, and store egress per second.</summary>
internal static class Plot
{
    public static void Draw(IReadOnlyList<Result> runs, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        var warm = multiplot.GetPlot(0);
        var egress = multiplot.GetPlot(1);
        var colors = new[] { Colors.SteelBlue, Colors.DarkOrange, Colors.SeaGreen };
        int i = 0;
        foreach (var group in runs.Where(r => r.Tier == Tier.Blob).GroupBy(r => r.Hosts))
        {
            var run = group.Single();
            var color = colors[i++ % colors.Length];
            var line = warm.Add.Scatter(run.Warm.Select(w => w.Time).ToArray(), run.Warm.Select(w => w.WarmFraction * 100).ToArray(), color);
            line.LegendText = $"{run.Hosts:N0} hosts";
            line.MarkerSize = 0;
            var bytes = egress.Add.Scatter(run.Egress.Select(e => e.Time).ToArray(), run.Egress.Select(e => e.BytesPerSecond * 8 / 1e9).ToArray(), color);
            bytes.LegendText = $"{run.Hosts:N0} hosts";
            bytes.MarkerSize = 0;
        }

        warm.Title("Hosts warm over time (Azure Blob tier, rolling restart over 60 s, one 7 s compile)");
        warm.XLabel("seconds since the rollout began");
        warm.YLabel("hosts warm (%)");
        warm.ShowLegend(Alignment.LowerRight);
        egress.Title("Bytes out of the store per second");
        egress.XLabel("seconds since the rollout began");
        egress.YLabel("Gbit/s");
        egress.ShowLegend(Alignment.UpperRight);
        multiplot.SavePng(path, 1000, 800);
    }
}
