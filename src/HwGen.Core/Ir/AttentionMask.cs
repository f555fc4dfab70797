using System.Globalization;
using System.Text;

namespace HwGen.Core.Ir;

/// <summary>
/// Which key columns a query row of one attention head attends (its non-zeros), for scores of <c>rows</c> query rows by
/// <c>n</c> key positions. Each form says the columns of a row in increasing order without storing a dense matrix:
/// <list type="bullet">
/// <item><see cref="Dense"/>: every column;</item>
/// <item><see cref="Causal"/>: columns 0..i of row i;</item>
/// <item><see cref="Lambda"/> (Λ, sink plus window: AccLLM, StreamingLLM): two ranges per row, no index storage;</item>
/// <item><see cref="Csr"/>: a static sparse mask, row pointers and column indices;</item>
/// <item><see cref="VitCod"/>: ViTCoD's split, a dense block of global columns every row attends plus the rest in CSR.</item>
/// </list>
/// The text form (<see cref="ToString"/>, <see cref="Parse"/>) is <c>dense</c>, <c>causal</c>, <c>lambda(s=S, w=W)</c> or
/// <c>lambda(s=S, w=W, causal)</c>, <c>csr(ptr=[..], col=[..])</c> and <c>vitcod(theta=θ, dense=[..], ptr=[..], col=[..])</c>.
/// </summary>
public abstract record AttentionMask
{
    /// <summary>Every column of every row.</summary>
    public sealed record Dense : AttentionMask
    {
        public override IEnumerable<int> Columns(int row, int n) => Enumerable.Range(0, n);
        public override string ToString() => "dense";
    }

    /// <summary>Row i attends columns 0..i.</summary>
    public sealed record Causal : AttentionMask
    {
        public override IEnumerable<int> Columns(int row, int n) => Enumerable.Range(0, Math.Min(row + 1, n));
        public override string? Check(int rows, int n) => rows == n ? null : $"a causal mask needs square scores, got {rows} query rows and {n} key positions";
        public override string ToString() => "causal";
    }

    /// <summary>
    /// Λ: the first <see cref="Sinks"/> columns plus a window of <see cref="Window"/> columns around the diagonal. Causal:
    /// M[i,j] = j &lt;= i and (j &lt; S or i - j &lt; W), the ranges [0, min(S, i+1)) and [max(S, i-W+1), i]. Not causal, the window
    /// is |i - j| &lt; W: [0, S) and [max(S, i-W+1), min(n-1, i+W-1)].
    /// </summary>
    public sealed record Lambda(int Sinks, int Window, bool IsCausal) : AttentionMask
    {
        /// <summary>The row's two ranges, [0, SinkEnd) and [From, To] (empty when From > To).</summary>
        public (int SinkEnd, int From, int To) Ranges(int row, int n)
        {
            int last = IsCausal ? row : Math.Min(n - 1, row + Window - 1);
            return (Math.Min(Sinks, IsCausal ? Math.Min(row + 1, n) : n), Math.Max(Sinks, row - Window + 1), Math.Min(last, n - 1));
        }

        public override IEnumerable<int> Columns(int row, int n)
        {
            var (sinkEnd, from, to) = Ranges(row, n);
            for (int j = 0; j < sinkEnd; j++) yield return j;
            for (int j = from; j <= to; j++) yield return j;
        }

        public override string? Check(int rows, int n) =>
            Sinks < 0 ? $"Λ sinks {Sinks} must not be negative"
            : Window < 1 ? $"Λ window {Window} must be at least 1 (the diagonal)"
            : rows != n ? $"a Λ mask needs square scores, got {rows} query rows and {n} key positions" : null;

        public override string ToString() => $"lambda(s={Sinks}, w={Window}{(IsCausal ? ", causal" : "")})";
    }

    /// <summary>A static sparse mask: row i attends <c>ColumnIndices[RowPointers[i]..RowPointers[i+1]]</c>, increasing.</summary>
    public sealed record Csr(IReadOnlyList<int> RowPointers, IReadOnlyList<int> ColumnIndices) : AttentionMask
    {
        public override IEnumerable<int> Columns(int row, int n)
        {
            for (int k = RowPointers[row]; k < RowPointers[row + 1]; k++) yield return ColumnIndices[k];
        }

        public override string? Check(int rows, int n) => CheckRows(rows, n, i => false, true);

        /// <summary>Why the CSR arrays are no mask of <paramref name="rows"/> rows over <paramref name="n"/> columns (columns
        /// <paramref name="taken"/> elsewhere excluded), or null; with <paramref name="needNonZero"/> every row must keep a column.</summary>
        internal string? CheckRows(int rows, int n, Func<int, bool> taken, bool needNonZero)
        {
            if (RowPointers.Count != rows + 1)
                return $"the CSR mask has {RowPointers.Count - 1} rows (row pointers: rows + 1), the sequence {rows}";
            if (RowPointers[0] != 0 || RowPointers[^1] != ColumnIndices.Count)
                return $"CSR row pointers must run from 0 to the {ColumnIndices.Count} column indices, got {RowPointers[0]} to {RowPointers[^1]}";
            for (int i = 0; i < rows; i++)
            {
                if (RowPointers[i + 1] < RowPointers[i]) return $"CSR row pointers decrease at row {i}";
                if (RowPointers[i + 1] > ColumnIndices.Count) return $"CSR row pointer {RowPointers[i + 1]} of row {i} is past the {ColumnIndices.Count} column indices";
                if (needNonZero && RowPointers[i + 1] == RowPointers[i]) return $"row {i} of the CSR mask has no non-zero: its softmax would divide by zero";
                for (int k = RowPointers[i]; k < RowPointers[i + 1]; k++)
                {
                    int c = ColumnIndices[k];
                    if (c < 0 || c >= n) return $"column index {c} of row {i} is outside the {n} key positions";
                    if (k > RowPointers[i] && c <= ColumnIndices[k - 1]) return $"column indices of row {i} are not increasing ({ColumnIndices[k - 1]} then {c})";
                    if (taken(c)) return $"column {c} of row {i} is a dense column too";
                }
            }
            return null;
        }

        public override string ToString() => $"csr(ptr={List(RowPointers)}, col={List(ColumnIndices)})";
    }

    /// <summary>
    /// ViTCoD's split: the <see cref="DenseColumns"/> (global tokens: attended by more than θ·rows rows of the mask split,
    /// <see cref="Split"/>) are attended by every row, the rest of each row is <see cref="Rest"/> (CSR, disjoint from them).
    /// </summary>
    public sealed record VitCod(double Theta, IReadOnlyList<int> DenseColumns, Csr Rest) : AttentionMask
    {
        public override IEnumerable<int> Columns(int row, int n) => DenseColumns.Concat(Rest.Columns(row, n)).Order();

        public override string? Check(int rows, int n)
        {
            if (!(Theta >= 0 && Theta <= 1)) return $"ViTCoD θ {Attr(Theta)} is outside [0, 1]";
            for (int k = 0; k < DenseColumns.Count; k++)
            {
                int c = DenseColumns[k];
                if (c < 0 || c >= n) return $"dense column {c} is outside the {n} key positions";
                if (k > 0 && c <= DenseColumns[k - 1]) return $"dense columns are not increasing ({DenseColumns[k - 1]} then {c})";
            }
            var dense = DenseColumns.ToHashSet();
            return Rest.CheckRows(rows, n, dense.Contains, DenseColumns.Count == 0);
        }

        public override string ToString() =>
            $"vitcod(theta={Attr(Theta)}, dense={List(DenseColumns)}, ptr={List(Rest.RowPointers)}, col={List(Rest.ColumnIndices)})";
    }

    /// <summary>The columns row <paramref name="row"/> attends, increasing.</summary>
    public abstract IEnumerable<int> Columns(int row, int n);

    /// <summary>Why this is no mask for scores of <paramref name="rows"/> query rows by <paramref name="n"/> key positions
    /// (shape, ranges, order, a row without non-zero), or null.</summary>
    public virtual string? Check(int rows, int n) => null;

    /// <summary>Non-zeros of the whole mask: the scores a sparse engine computes.</summary>
    public long NonZeros(int rows, int n)
    {
        long nz = 0;
        for (int i = 0; i < rows; i++) nz += Columns(i, n).Count();
        return nz;
    }

    /// <summary>The mask as keep flags, row by row (rows x n).</summary>
    public bool[] Keep(int rows, int n)
    {
        var keep = new bool[(long)rows * n];
        for (int i = 0; i < rows; i++)
            foreach (int j in Columns(i, n)) keep[(long)i * n + j] = true;
        return keep;
    }

    /// <summary>
    /// The description of keep flags (rows x n, row by row): dense, causal or Λ when the pattern is one (the fewest sinks that
    /// fit), else CSR. Rows must each keep a column.
    /// </summary>
    public static AttentionMask FromKeep(ReadOnlySpan<bool> keep, int rows, int n)
    {
        if (keep.Length != (long)rows * n) throw new ArgumentException($"{keep.Length} keep flags for {rows} x {n}");
        if (!keep.Contains(false)) return new Dense();
        if (rows == n)
        {
            bool causal = true;
            for (int i = 0; i < rows && causal; i++) causal = !keep.Slice(i * n + i + 1, n - i - 1).Contains(true);
            // The last row holds both ranges: its window is the run of kept columns that ends at n-1, stopping at the sinks.
            var last = keep.Slice((rows - 1) * n, n);
            // Not causal, the first row's run from column 0 is max(S, W) long: the window when it passes the sinks.
            int firstRun = keep[..n].IndexOf(false) is var f and >= 0 ? f : n;
            for (int s = 0; s < n && last[n - 1]; s++)
            {
                int from = n - 1;
                while (from - 1 >= s && last[from - 1]) from--;
                foreach (int w in causal ? [n - from] : new[] { n - from, firstRun })
                {
                    var lambda = new Lambda(s, w, causal);
                    if (w >= 1 && Same(lambda, keep, rows, n)) return causal && s == 0 && w == n ? new Causal() : lambda;
                }
            }
        }
        var ptr = new int[rows + 1];
        var cols = new List<int>();
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < n; j++) if (keep[i * n + j]) cols.Add(j);
            ptr[i + 1] = cols.Count;
        }
        return new Csr(ptr, cols);
    }

    static bool Same(AttentionMask m, ReadOnlySpan<bool> keep, int rows, int n)
    {
        for (int i = 0; i < rows; i++)
        {
            int expect = 0;
            foreach (int j in m.Columns(i, n))
            {
                for (; expect < j; expect++) if (keep[i * n + expect]) return false;
                if (!keep[i * n + j]) return false;
                expect = j + 1;
            }
            for (; expect < n; expect++) if (keep[i * n + expect]) return false;
        }
        return true;
    }

    /// <summary>ViTCoD's split of <paramref name="mask"/> with θ: columns attended by more than θ·rows rows become dense columns
    /// (every row attends them, as ViTCoD computes its global tokens densely), the rest stays CSR.</summary>
    public static VitCod Split(AttentionMask mask, double theta, int rows, int n)
    {
        var count = new int[n];
        for (int i = 0; i < rows; i++) foreach (int j in mask.Columns(i, n)) count[j]++;
        var dense = Enumerable.Range(0, n).Where(j => count[j] > theta * rows).ToArray();
        var isDense = new bool[n];
        foreach (int j in dense) isDense[j] = true;
        var ptr = new int[rows + 1];
        var cols = new List<int>();
        for (int i = 0; i < rows; i++)
        {
            cols.AddRange(mask.Columns(i, n).Where(j => !isDense[j]));
            ptr[i + 1] = cols.Count;
        }
        return new VitCod(theta, dense, new Csr(ptr, cols));
    }

    static string List(IEnumerable<int> v) => "[" + string.Join(",", v) + "]";
    static string Attr(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Reads the text form (see <see cref="AttentionMask"/>); a <see cref="HwGenException"/> saying what is wrong.</summary>
    public static AttentionMask Parse(string text)
    {
        var p = new MaskText(text);
        var mask = p.Mask();
        p.End();
        return mask;
    }

    /// <summary>The text form's reader: <c>kind</c> or <c>kind(key=value, .., flag)</c>, values numbers or lists of integers.</summary>
    sealed class MaskText(string text)
    {
        int pos;

        HwGenException Error(string why) => new($"attention mask '{text}': {why}");

        void Skip() { while (pos < text.Length && char.IsWhiteSpace(text[pos])) pos++; }

        bool Eat(char c)
        {
            Skip();
            if (pos < text.Length && text[pos] == c) { pos++; return true; }
            return false;
        }

        void Expect(char c)
        {
            if (!Eat(c)) throw Error($"expected '{c}' at position {pos}");
        }

        string Word()
        {
            Skip();
            int start = pos;
            while (pos < text.Length && char.IsLetter(text[pos])) pos++;
            return pos > start ? text[start..pos] : throw Error($"expected a name at position {pos}");
        }

        string Number()
        {
            Skip();
            int start = pos;
            while (pos < text.Length && (char.IsDigit(text[pos]) || text[pos] is '-' or '+' or '.' or 'e' or 'E')) pos++;
            return pos > start ? text[start..pos] : throw Error($"expected a number at position {pos}");
        }

        public void End()
        {
            Skip();
            if (pos != text.Length) throw Error($"unexpected '{text[pos..]}'");
        }

        object Value()
        {
            if (!Eat('[')) return Number();
            var items = new List<int>();
            if (Eat(']')) return items;
            do
            {
                string s = Number();
                items.Add(int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v : throw Error($"'{s}' is no integer"));
            } while (Eat(','));
            Expect(']');
            return items;
        }

        public AttentionMask Mask()
        {
            string kind = Word();
            var args = new Dictionary<string, object>();
            var flags = new HashSet<string>();
            if (Eat('('))
            {
                if (!Eat(')'))
                {
                    do
                    {
                        string key = Word();
                        if (Eat('=')) { if (!args.TryAdd(key, Value())) throw Error($"'{key}' given twice"); }
                        else flags.Add(key);
                    } while (Eat(','));
                    Expect(')');
                }
            }
            IReadOnlyList<int> Ints(string key) => Take(key) as List<int> ?? throw Error($"'{key}' must be a list of integers");
            double Num(string key) => Take(key) is string s && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)
                ? d : throw Error($"'{key}' must be a number");
            int Int(string key) => Num(key) is var d && d == Math.Floor(d) && Math.Abs(d) < 1 << 30 ? (int)d : throw Error($"'{key}' must be an integer");
            object Take(string key)
            {
                if (!args.Remove(key, out var v)) throw Error($"{kind} needs '{key}'");
                return v;
            }
            AttentionMask mask = kind switch
            {
                "dense" => new Dense(),
                "causal" => new Causal(),
                "lambda" => new Lambda(Int("s"), Int("w"), flags.Remove("causal")),
                "csr" => new Csr(Ints("ptr"), Ints("col")),
                "vitcod" => new VitCod(Num("theta"), Ints("dense"), new Csr(Ints("ptr"), Ints("col"))),
                _ => throw Error($"unknown mask kind '{kind}' (dense, causal, lambda, csr, vitcod)"),
            };
            if (args.Keys.Concat(flags).FirstOrDefault() is { } extra) throw Error($"{kind} takes no '{extra}'");
            return mask;
        }
    }
}
