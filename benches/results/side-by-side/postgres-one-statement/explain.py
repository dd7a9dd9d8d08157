import json, os, subprocess, time
N=14
order_cols=[("i","integer"),("id","text"),("client_id","text"),("status","text"),("customer_code","text"),("site_code","text"),("sales_name","text"),("address","text"),("purchase_order_no","text"),("currency","text"),("livemode","boolean"),("total_amount","numeric"),("version","bigint"),("created_at","timestamptz"),("updated_at","timestamptz")]
line_cols=[("line_no","integer"),("product_code","text"),("quantity","numeric"),("uom","text"),("unit_price","numeric"),("line_amount","numeric"),("notes","text")]
def stmt(run):
    orders=[];lines=[]
    for i in range(N):
        oid="so_%012x%020x"%(int(time.time()*1000), run*1000+i)
        orders.append(dict(i=i,id=oid,client_id="c1",status="received",customer_code="CUST-001",site_code="SITE-001",sales_name="John Doe",address="Jl. Sudirman No. 1, Jakarta",purchase_order_no="PO-%d-%d"%(run,i),currency="IDR",livemode=True,total_amount="300001",version=1,created_at="2026-12-01T10:00:00.000Z",updated_at="2026-12-01T10:00:00.000Z"))
        lines.append(dict(order_id=oid,line_no=1,product_code="PRD-0000",quantity="2",uom="PCS",unit_price="150000.5",line_amount="300001",notes="deliver before noon"))
    on=", ".join(n for n,_ in order_cols if n!="i")
    ot=", ".join(f"{n} {k}" for n,k in order_cols)
    ln=", ".join(n for n,_ in line_cols)
    lt=", ".join(f"{n} {k}" for n,k in line_cols)
    lc=", ".join("l."+n for n,_ in line_cols)
    q=lambda s: "'"+s.replace("'","''")+"'"
    return f"""EXPLAIN (ANALYZE, BUFFERS, TIMING) WITH o AS (
 INSERT INTO sales_orders ({on}) SELECT {on} FROM json_to_recordset(CAST({q(json.dumps(orders))} AS json)) AS r({ot}) ORDER BY i
 ON CONFLICT (client_id, purchase_order_no) WHERE purchase_order_no IS NOT NULL AND status NOT IN ('cancelled', 'rejected') DO NOTHING
 RETURNING id, seq, client_id, created_at),
lines AS (INSERT INTO sales_order_lines (order_seq, {ln}) SELECT o.seq, {lc} FROM json_to_recordset(CAST({q(json.dumps(lines))} AS json)) AS l(order_id text, {lt}) JOIN o ON o.id = l.order_id),
history AS (INSERT INTO sales_order_history (order_seq, at, actor, actor_name, to_status, version) SELECT seq, created_at, 'partner', client_id, 'received', 1 FROM o),
counted AS (SELECT client_id, count(*) AS count FROM o GROUP BY client_id),
taken AS (INSERT INTO event_sequences (client_id, last) SELECT client_id, count FROM counted ORDER BY client_id ON CONFLICT (client_id) DO UPDATE SET last = event_sequences.last + excluded.last RETURNING client_id, last),
announced AS (SELECT taken.client_id, taken.last FROM taken, pg_notify('order_events', taken.client_id)),
events AS (INSERT INTO order_events (id, client_id, sequence, type, created_at, data)
 SELECT 'evt_' || substr(o.id, 4), o.client_id, announced.last - counted.count + row_number() OVER (PARTITION BY o.client_id ORDER BY o.seq), 'order.created', o.created_at, NULL
 FROM o JOIN counted USING (client_id) JOIN announced USING (client_id))
SELECT id, seq FROM o;
"""
sql="".join(stmt(r) for r in range(1,41))
open("/tmp/explain.sql","w").write(sql)
