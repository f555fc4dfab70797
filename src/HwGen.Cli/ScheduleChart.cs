using System.Globalization;
using System.Net;
using System.Text;
using HwGen.Rtl.Program;
using HwGen.Scheduling;

namespace HwGen.Cli;

/// <summary>
/// schedule.svg / schedule.html: the operator timeline (one column per step, coloured by layer) above the
/// scratchpad occupancy (x: step, y: address; one rectangle per residency segment, coloured by tensor kind,
/// with load and store marks). Hovering a rectangle names the tensor.
/// </summary>
public static class ScheduleChart
{
    const int Left = 70, Top = 40, TimelineHeight = 26, ChartHeight = 420, Right = 20, Bottom = 60;

    static readonly Dictionary<TensorKind, string> Colours = new()
    {
        [TensorKind.Input] = "#4e79a7", [TensorKind.Weight] = "#f28e2b", [TensorKind.Intermediate] = "#59a14f", [TensorKind.Output] = "#b07aa1",
    };
    static readonly string[] LayerColours = ["#9c755f", "#76b7b2", "#edc948", "#e15759", "#bab0ac", "#ff9da7", "#86bcb6", "#d37295"];

    /// <summary>Writes the chart to <paramref name="o"/> as it goes (a rectangle per step and per residency segment: tens of
    /// megabytes for a large design, never held whole).</summary>
    public static void WriteSvg(Design d, TextWriter o)
    {
        var p = d.Tiles.Problem;
        var s = d.ScratchpadSchedule;
        int steps = s.Steps.Count;
        double colW = Math.Clamp(900.0 / Math.Max(1, steps), 2, 40);
        double width = Left + steps * colW + Right;
        double chartTop = Top + TimelineHeight + 20;
        double yScale = ChartHeight / (double)p.Capacity;
        var inv = CultureInfo.InvariantCulture;
        string F(double v) => v.ToString("0.##", inv);
        o.Write($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(width)}\" height=\"{F(chartTop + ChartHeight + Bottom)}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        o.Write("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        o.Write($"<text x=\"{Left}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{Esc(d.ModelName)}: {Esc(d.Schedule)}; loaded {d.Traffic.Loaded} B, stored {d.Traffic.Stored} B, " +
                  $"non-compulsory {d.Traffic.NonCompulsory} B (greedy {d.GreedyTraffic.NonCompulsory} B)</text>\n");

        // Operator timeline.
        var layers = d.Tiles.Tasks.Select(t => t.Op.Name).Distinct().ToList();
        var layerIndex = layers.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i);
        o.Write($"<text x=\"4\" y=\"{F(Top + 17)}\">operators</text>\n");
        for (int i = 0; i < steps; i++)
        {
            var task = d.Tiles.Tasks[s.Steps[i].Op];
            string colour = LayerColours[layerIndex[task.Op.Name] % LayerColours.Length];
            o.Write($"<rect x=\"{F(Left + i * colW)}\" y=\"{Top}\" width=\"{F(Math.Max(1, colW - 1))}\" height=\"{TimelineHeight}\" fill=\"{colour}\">" +
                      $"<title>step {i}: {Esc(p.Ops[s.Steps[i].Op].Name)}</title></rect>\n");
        }

        // Occupancy: one rectangle per residency segment.
        o.Write($"<rect x=\"{Left}\" y=\"{F(chartTop)}\" width=\"{F(steps * colW)}\" height=\"{ChartHeight}\" fill=\"none\" stroke=\"#333\"/>\n");
        var loads = new HashSet<(int, int)>(s.Steps.SelectMany((st, i) => st.Loads.Select(t => (t, i))));
        foreach (var (t, start, end, addr) in IlpScheduler.SegmentsOf(p, s))
        {
            var tensor = p.Tensors[t];
            double x = Left + start * colW, y = chartTop + addr * yScale, w = (end - start) * colW, h = Math.Max(1, p.Size(t) * yScale);
            o.Write($"<rect x=\"{F(x)}\" y=\"{F(y)}\" width=\"{F(w)}\" height=\"{F(h)}\" fill=\"{Colours[tensor.Kind]}\" fill-opacity=\"0.75\" stroke=\"white\" stroke-width=\"0.5\">" +
                      $"<title>{Esc(tensor.Name)} ({tensor.Kind}, {tensor.Bytes} B) steps {start}..{end - 1} at {addr}</title></rect>\n");
            if (loads.Contains((t, start))) o.Write($"<path d=\"M{F(x)},{F(y)} l5,0 l-5,6 z\" fill=\"black\"><title>load {Esc(tensor.Name)}</title></path>\n");
        }
        var storeMarks = s.Steps.SelectMany((st, i) => st.Stores.Select(t => (t, i))).Concat(s.FinalStores.Select(t => (t, steps)));
        foreach (var (t, i) in storeMarks)
            o.Write($"<path d=\"M{F(Left + i * colW)},{F(chartTop + ChartHeight + 4)} l-4,8 l8,0 z\" fill=\"#c00\"><title>store {Esc(p.Tensors[t].Name)} before step {i}</title></path>\n");

        // Axes and legend.
        o.Write($"<text x=\"4\" y=\"{F(chartTop + 12)}\">address 0</text>\n");
        o.Write($"<text x=\"4\" y=\"{F(chartTop + ChartHeight)}\">{p.Capacity} B</text>\n");
        o.Write($"<text x=\"{Left}\" y=\"{F(chartTop + ChartHeight + 26)}\">step 0</text><text x=\"{F(Left + steps * colW - 40)}\" y=\"{F(chartTop + ChartHeight + 26)}\">step {steps - 1}</text>\n");
        double lx = Left;
        foreach (var (kind, colour) in Colours)
        {
            o.Write($"<rect x=\"{F(lx)}\" y=\"{F(chartTop + ChartHeight + 36)}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{F(lx + 16)}\" y=\"{F(chartTop + ChartHeight + 46)}\">{kind}</text>\n");
            lx += 100;
        }
        o.Write($"<text x=\"{F(lx)}\" y=\"{F(chartTop + ChartHeight + 46)}\">black: load, red: store</text>\n");
        foreach (var (name, i) in layers.Select((n, i) => (n, i)))
            o.Write($"<rect x=\"{F(lx + 170 + i * 110)}\" y=\"{F(chartTop + ChartHeight + 36)}\" width=\"12\" height=\"12\" fill=\"{LayerColours[i % LayerColours.Length]}\"/>" +
                      $"<text x=\"{F(lx + 186 + i * 110)}\" y=\"{F(chartTop + ChartHeight + 46)}\">{Esc(name)}</text>\n");
        o.Write("</svg>\n");
    }

    /// <summary>The chart in an HTML page, written as it goes.</summary>
    public static void WriteHtml(Design d, TextWriter o)
    {
        o.Write($"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>HwGen schedule: {Esc(d.ModelName)}</title></head>\n<body>\n");
        WriteSvg(d, o);
        o.Write("</body></html>\n");
    }

    static string Esc(string s) => WebUtility.HtmlEncode(s);
}
