import java.util.HashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

/**
 * Iceberg's REST catalog fixture (org.apache.iceberg.rest.RESTCatalogServer)
 * wired the same way: a JdbcCatalog on SQLite behind RESTCatalogAdapter and
 * RESTCatalogServlet in Jetty. The one difference: RESTCatalogServer always
 * listens on every interface at a fixed port, while tests want 127.0.0.1 and a
 * port the kernel picks (no race between parallel test files).
 *
 * Usage: java -cp 'lib/*' LoopbackRestServer.java WAREHOUSE_DIR JDBC_URI
 * Prints "LISTENING <port>" once it accepts connections.
 */
public class LoopbackRestServer {
  public static void main(String[] args) throws Exception {
    Map<String, String> props = new HashMap<>();
    props.put("catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog");
    props.put("warehouse", args[0]);
    props.put("uri", args[1]);
    props.put("jdbc.schema-version", "V1");
    Catalog catalog = CatalogUtil.buildIcebergCatalog("rest_backend", props, new Configuration());

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(new RESTCatalogAdapter(catalog))), "/*");
    context.insertHandler(new GzipHandler());

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    server.setHandler(context);
    server.start();
    System.out.println("LISTENING " + connector.getLocalPort());
    System.out.flush();
    server.join();
  }
}
