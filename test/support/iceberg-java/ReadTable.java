import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.iceberg.BaseTable;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.MetadataColumns;
import org.apache.iceberg.MetadataTableType;
import org.apache.iceberg.MetadataTableUtils;
import org.apache.iceberg.PartitionField;
import org.apache.iceberg.Snapshot;
import org.apache.iceberg.StaticTableOperations;
import org.apache.iceberg.StructLike;
import org.apache.iceberg.Table;
import org.apache.iceberg.data.IcebergGenerics;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.expressions.Expression;
import org.apache.iceberg.expressions.Expressions;
import org.apache.iceberg.hadoop.HadoopFileIO;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;

/**
 * Apache Iceberg's Java reader (iceberg-data's generic reader over
 * iceberg-parquet) reads tables by their metadata file, for tests that check
 * what LakeSync writes. One request per stdin line, a JSON object:
 * {"name", "metadata": file URI, "snapshot": id as text (optional),
 * "appendsAfter": id as text (optional, the rows appended after that snapshot),
 * "filter": [column, value or null] (optional, equality / is-null)}.
 * One JSON line per request on stdout: the rows of the scan, the snapshots,
 * the schema and partition spec; or {"error": stack trace} when Java refused.
 * 64-bit integers are printed as text (exact), binary as hex, timestamps ISO.
 */
public final class ReadTable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Configuration CONF = new Configuration();
  private static final Map<String, Table> TABLES = new HashMap<>();

  public static void main(String[] args) throws Exception {
    HadoopFileIO io = new HadoopFileIO(CONF);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintWriter out = new PrintWriter(System.out, false, StandardCharsets.UTF_8);
    for (String line = in.readLine(); line != null; line = in.readLine()) {
      if (line.isBlank()) continue;
      JsonNode req = JSON.readTree(line);
      ObjectNode res;
      try {
        res = read(io, req);
      } catch (Throwable e) {
        StringWriter trace = new StringWriter();
        e.printStackTrace(new PrintWriter(trace));
        res = JSON.createObjectNode();
        res.put("error", trace.toString());
      }
      res.put("name", req.path("name").asText());
      out.println(JSON.writeValueAsString(res));
      out.flush();
    }
  }

  private static ObjectNode read(HadoopFileIO io, JsonNode req) throws Exception {
    String name = req.path("name").asText();
    // A metadata file never changes: filtered reads of the same version share its parsed metadata.
    Table table = TABLES.computeIfAbsent(req.path("metadata").asText(), m -> new BaseTable(new StaticTableOperations(m, io), name));
    IcebergGenerics.ScanBuilder scan = IcebergGenerics.read(table);
    JsonNode snapshot = req.path("snapshot");
    if (snapshot.isTextual()) scan = scan.useSnapshot(Long.parseLong(snapshot.asText()));
    // What an incremental consumer (Spark or Flink streaming) reads: the rows of the append snapshots after this one.
    JsonNode appendsAfter = req.path("appendsAfter");
    if (appendsAfter.isTextual()) scan = scan.appendsAfter(Long.parseLong(appendsAfter.asText()));
    JsonNode filter = req.path("filter");
    if (filter.isArray()) {
      String column = filter.get(0).asText();
      JsonNode value = filter.get(1);
      Expression e = value.isNull() ? Expressions.isNull(column) : Expressions.equal(column, literal(table, column, value.asText()));
      scan = scan.where(e);
    }
    ObjectNode res = JSON.createObjectNode();
    ArrayNode rows = res.putArray("rows");
    try (CloseableIterable<Record> records = scan.build()) {
      for (Record r : records) rows.add(toJson(r, r.struct()));
    }
    ArrayNode snapshots = res.putArray("snapshots");
    for (Snapshot s : table.snapshots()) {
      ObjectNode o = snapshots.addObject();
      o.put("id", Long.toString(s.snapshotId()));
      o.put("parent", s.parentId() == null ? null : Long.toString(s.parentId()));
      o.put("sequenceNumber", s.sequenceNumber());
      o.put("operation", s.operation());
      o.set("summary", JSON.valueToTree(s.summary()));
    }
    Snapshot current = table.currentSnapshot();
    res.put("current", current == null ? null : Long.toString(current.snapshotId()));
    ArrayNode schema = res.putArray("schema");
    for (Types.NestedField f : table.schema().columns()) {
      schema.addArray().add(f.fieldId()).add(f.name()).add(f.type().toString()).add(f.isRequired());
    }
    ArrayNode spec = res.putArray("spec");
    for (PartitionField f : table.spec().fields()) spec.addArray().add(f.name()).add(f.transform().toString());
    // Every row of the metadata tables, every field (readable_metrics decodes each bound by its type).
    // Only for plain scans: filtered and time-travel reads come in numbers.
    ObjectNode counts = res.putObject("metadataTables");
    ArrayNode partitions = res.putArray("partitions");
    ArrayNode rowGroups = res.putArray("rowGroups");
    if (filter.isArray() || snapshot.isTextual() || appendsAfter.isTextual()) return res;
    for (MetadataTableType type : METADATA_TABLES) {
      Table mt = MetadataTableUtils.createMetadataTableInstance(table, type);
      ArrayNode rowsOf = JSON.createArrayNode();
      try (CloseableIterable<FileScanTask> tasks = mt.newScan().planFiles()) {
        for (FileScanTask task : tasks) {
          try (CloseableIterable<StructLike> taskRows = task.asDataTask().rows()) {
            for (StructLike row : taskRows) rowsOf.add(structJson(row, mt.schema().asStruct()));
          }
        }
      }
      counts.put(type.name().toLowerCase(), rowsOf.size());
      if (type == MetadataTableType.FILES) {
        // From each footer: the manifests carry no split offsets (they are optional).
        for (JsonNode row : rowsOf) {
          if (row.path("content").asInt() != 0) continue;
          HadoopInputFile file = HadoopInputFile.fromPath(new Path(row.path("file_path").asText()), CONF);
          try (ParquetFileReader reader = ParquetFileReader.open(file)) {
            rowGroups.add(reader.getFooter().getBlocks().size());
          }
        }
      }
      if (type == MetadataTableType.PARTITIONS) {
        for (JsonNode row : rowsOf) if (row.has("partition")) partitions.add(row.get("partition"));
      }
    }
    return res;
  }

  private static final MetadataTableType[] METADATA_TABLES = {
    MetadataTableType.ENTRIES, MetadataTableType.FILES, MetadataTableType.MANIFESTS, MetadataTableType.PARTITIONS,
    MetadataTableType.HISTORY, MetadataTableType.METADATA_LOG_ENTRIES, MetadataTableType.SNAPSHOTS, MetadataTableType.REFS,
    MetadataTableType.ALL_FILES, MetadataTableType.ALL_MANIFESTS, MetadataTableType.ALL_ENTRIES,
  };

  /** A filter literal of the column's type. */
  private static Object literal(Table table, String column, String text) {
    Type type = table.schema().findType(column);
    switch (type.typeId()) {
      case LONG: return Long.parseLong(text);
      case INTEGER: return Integer.parseInt(text);
      case DOUBLE: return Double.parseDouble(text);
      case BOOLEAN: return Boolean.parseBoolean(text);
      default: return text;
    }
  }

  private static ObjectNode structJson(StructLike row, Types.StructType type) {
    ObjectNode o = JSON.createObjectNode();
    List<Types.NestedField> fields = type.fields();
    for (int i = 0; i < fields.size(); i++) {
      Object v = row.get(i, Object.class);
      Type t = fields.get(i).type();
      o.set(fields.get(i).name(), v instanceof StructLike s && t.isStructType() ? structJson(s, t.asStructType()) : value(v));
    }
    return o;
  }

  private static ObjectNode toJson(Record r, Types.StructType type) {
    ObjectNode o = JSON.createObjectNode();
    List<Types.NestedField> fields = type.fields();
    for (int i = 0; i < fields.size(); i++) {
      // The reader adds _pos when it applies position deletes: not a table column.
      if (MetadataColumns.isMetadataColumn(fields.get(i).fieldId())) continue;
      o.set(fields.get(i).name(), value(r.get(i)));
    }
    return o;
  }

  private static JsonNode value(Object v) {
    if (v == null) return JSON.nullNode();
    if (v instanceof Record rec) return toJson(rec, rec.struct());
    if (v instanceof Long || v instanceof Integer) return JSON.getNodeFactory().textNode(v.toString());
    if (v instanceof Double d) return JSON.getNodeFactory().numberNode(d);
    if (v instanceof Float f) return JSON.getNodeFactory().numberNode(f);
    if (v instanceof Boolean b) return JSON.getNodeFactory().booleanNode(b);
    if (v instanceof CharSequence s) return JSON.getNodeFactory().textNode(s.toString());
    if (v instanceof ByteBuffer b) {
      ByteBuffer d = b.duplicate();
      StringBuilder hex = new StringBuilder();
      while (d.hasRemaining()) hex.append(String.format("%02x", d.get() & 0xff));
      return JSON.getNodeFactory().textNode(hex.toString());
    }
    if (v instanceof OffsetDateTime t) return JSON.getNodeFactory().textNode(isoformat(t.withOffsetSameInstant(ZoneOffset.UTC).toLocalDateTime()) + "+00:00");
    if (v instanceof LocalDateTime t) return JSON.getNodeFactory().textNode(isoformat(t));
    if (v instanceof StructLike s) {
      ArrayNode a = JSON.createArrayNode();
      for (int i = 0; i < s.size(); i++) a.add(value(s.get(i, Object.class)));
      return a;
    }
    if (v instanceof List<?> list) {
      ArrayNode a = JSON.createArrayNode();
      for (Object x : list) a.add(value(x));
      return a;
    }
    if (v instanceof Map<?, ?> map) {
      ObjectNode m = JSON.createObjectNode();
      for (Map.Entry<?, ?> e : map.entrySet()) m.set(String.valueOf(e.getKey()), value(e.getValue()));
      return m;
    }
    return JSON.getNodeFactory().textNode(v.toString());
  }

  /** As Python's datetime.isoformat() prints it (what pyicebergScan returns): microseconds only when non-zero. */
  private static String isoformat(LocalDateTime t) {
    String s = t.truncatedTo(ChronoUnit.SECONDS).format(DateTimeFormatter.ISO_LOCAL_DATE_TIME);
    return t.getNano() == 0 ? s : s + String.format(".%06d", t.getNano() / 1000);
  }
}
