<?xml version="1.0" encoding="UTF-8"?>
<!-- my-nsw e-CO, inbound: Malaysia's e-CO dialect (urn:my:dagang:eco:2) -> canonical e-CO.
     The exact inverse of eco.out.xsl (the round-trip fixtures prove it). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:my="urn:my:dagang:eco:2" xmlns:cl="urn:swgw:codelists"
    xmlns:eco="urn:swgw:canonical:eco:1" exclude-result-prefixes="my cl">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/my:CertificateOfOrigin">
    <eco:PreferentialCertificateOfOrigin>
      <xsl:apply-templates select="my:Header"/>
      <xsl:apply-templates select="my:Shipment"/>
    </eco:PreferentialCertificateOfOrigin>
  </xsl:template>

  <xsl:template match="/*" priority="-1">
    <xsl:message terminate="yes">my-nsw eco: root element <xsl:value-of select="name()"/> is not a my:CertificateOfOrigin</xsl:message>
  </xsl:template>

  <xsl:template match="my:Header">
    <eco:ExchangedDocument>
      <eco:ID><xsl:call-template name="scheme"><xsl:with-param name="from" select="my:CertNo"/></xsl:call-template><xsl:value-of select="my:CertNo"/></eco:ID>
      <eco:TypeCode>861</eco:TypeCode>
      <xsl:if test="my:Status"><eco:StatusCode><xsl:value-of select="cl:translate('document-status', my:Status)"/></eco:StatusCode></xsl:if>
      <eco:IssueDateTime><xsl:value-of select="my:IssuedAt"/></eco:IssueDateTime>
      <xsl:for-each select="my:Remark"><eco:Remarks><xsl:value-of select="."/></eco:Remarks></xsl:for-each>
      <xsl:apply-templates select="my:IssuingBody" mode="party"><xsl:with-param name="name" select="'eco:Issuer'"/></xsl:apply-templates>
      <xsl:for-each select="my:Signature">
        <eco:FirstSignatoryDocumentAuthentication>
          <eco:ActualDateTime><xsl:value-of select="@at"/></eco:ActualDateTime>
          <xsl:if test="@by"><eco:SignatoryName><xsl:value-of select="@by"/></eco:SignatoryName></xsl:if>
          <xsl:for-each select="my:Place"><xsl:call-template name="place"><xsl:with-param name="name" select="'eco:IssueLogisticsLocation'"/></xsl:call-template></xsl:for-each>
        </eco:FirstSignatoryDocumentAuthentication>
      </xsl:for-each>
    </eco:ExchangedDocument>
  </xsl:template>

  <xsl:template match="my:Shipment">
    <eco:SpecifiedConsignment>
      <xsl:if test="@ref"><eco:ID><xsl:value-of select="@ref"/></eco:ID></xsl:if>
      <xsl:apply-templates select="my:Exporter" mode="party"><xsl:with-param name="name" select="'eco:Consignor'"/></xsl:apply-templates>
      <xsl:apply-templates select="my:Importer" mode="party"><xsl:with-param name="name" select="'eco:Consignee'"/></xsl:apply-templates>
      <eco:ExportCountryID><xsl:value-of select="cl:translate('country', my:ExportCountry)"/></eco:ExportCountryID>
      <eco:ImportCountryID><xsl:value-of select="cl:translate('country', my:ImportCountry)"/></eco:ImportCountryID>
      <eco:ApplicableCrossBorderRegulatoryProcedure>
        <eco:FreeTradeAgreementName><xsl:value-of select="my:Agreement"/></eco:FreeTradeAgreementName>
      </eco:ApplicableCrossBorderRegulatoryProcedure>
      <xsl:for-each select="my:PortOfLoading"><xsl:call-template name="place"><xsl:with-param name="name" select="'eco:LoadingLogisticsLocation'"/></xsl:call-template></xsl:for-each>
      <xsl:for-each select="my:PortOfDischarge"><xsl:call-template name="place"><xsl:with-param name="name" select="'eco:UnloadingLogisticsLocation'"/></xsl:call-template></xsl:for-each>
      <xsl:for-each select="my:Transport">
        <eco:MainCarriageLogisticsTransportMovement>
          <eco:ModeCode><xsl:value-of select="@mode"/></eco:ModeCode>
          <xsl:if test="@voyage"><eco:ID><xsl:value-of select="@voyage"/></eco:ID></xsl:if>
          <xsl:if test="@vessel"><eco:UsedLogisticsTransportMeansName><xsl:value-of select="@vessel"/></eco:UsedLogisticsTransportMeansName></xsl:if>
          <xsl:if test="@departs"><eco:DepartureDateTime><xsl:value-of select="@departs"/></eco:DepartureDateTime></xsl:if>
        </eco:MainCarriageLogisticsTransportMovement>
      </xsl:for-each>
      <xsl:for-each select="my:ItemGroup">
        <eco:IncludedConsignmentItem>
          <xsl:if test="@id"><eco:ID><xsl:value-of select="@id"/></eco:ID></xsl:if>
          <xsl:apply-templates select="my:Item"/>
        </eco:IncludedConsignmentItem>
      </xsl:for-each>
    </eco:SpecifiedConsignment>
  </xsl:template>

  <xsl:template match="my:Item">
    <eco:IncludedTradeLineItem>
      <eco:SequenceNumeric><xsl:value-of select="@line"/></eco:SequenceNumeric>
      <xsl:if test="@invoice"><eco:InvoiceReference><xsl:value-of select="@invoice"/></eco:InvoiceReference></xsl:if>
      <eco:SpecifiedTradeProduct>
        <eco:Description><xsl:value-of select="my:Description"/></eco:Description>
        <eco:DesignatedProductClassification>
          <eco:ClassCode listID="HS" listVersionID="{cl:translate('hs-version', my:HSCode/@edition)}"><xsl:value-of select="cl:check('hs', my:HSCode)"/></eco:ClassCode>
        </eco:DesignatedProductClassification>
        <eco:OriginTradeCountry><eco:ID><xsl:value-of select="cl:translate('country', my:Origin)"/></eco:ID></eco:OriginTradeCountry>
        <eco:OriginCriterionCode><xsl:value-of select="my:Origin/@criterion"/></eco:OriginCriterionCode>
      </eco:SpecifiedTradeProduct>
      <xsl:for-each select="my:GrossWeight"><eco:GrossWeightMeasure unitCode="{cl:translate('unit', @unit)}"><xsl:value-of select="."/></eco:GrossWeightMeasure></xsl:for-each>
      <xsl:for-each select="my:NetWeight"><eco:NetWeightMeasure unitCode="{cl:translate('unit', @unit)}"><xsl:value-of select="."/></eco:NetWeightMeasure></xsl:for-each>
      <xsl:for-each select="my:Package">
        <eco:PhysicalReferencedLogisticsPackage>
          <eco:ItemQuantity><xsl:value-of select="@count"/></eco:ItemQuantity>
          <eco:LevelCode><xsl:value-of select="@level"/></eco:LevelCode>
          <eco:TypeCode><xsl:value-of select="@type"/></eco:TypeCode>
          <xsl:if test="@marks"><eco:ShippingMarks><xsl:value-of select="@marks"/></eco:ShippingMarks></xsl:if>
        </eco:PhysicalReferencedLogisticsPackage>
      </xsl:for-each>
    </eco:IncludedTradeLineItem>
  </xsl:template>

  <xsl:template match="*" mode="party">
    <xsl:param name="name"/>
    <xsl:element name="{$name}" namespace="urn:swgw:canonical:eco:1">
      <xsl:for-each select="my:PartyId"><eco:ID><xsl:call-template name="scheme"><xsl:with-param name="from" select="."/></xsl:call-template><xsl:value-of select="."/></eco:ID></xsl:for-each>
      <eco:Name><xsl:value-of select="my:Name"/></eco:Name>
      <xsl:for-each select="my:Address">
        <eco:PostalAddress>
          <xsl:if test="my:Street"><eco:LineOne><xsl:value-of select="my:Street"/></eco:LineOne></xsl:if>
          <xsl:if test="my:Street2"><eco:LineTwo><xsl:value-of select="my:Street2"/></eco:LineTwo></xsl:if>
          <xsl:if test="my:City"><eco:CityName><xsl:value-of select="my:City"/></eco:CityName></xsl:if>
          <xsl:if test="my:Postcode"><eco:PostcodeCode><xsl:value-of select="my:Postcode"/></eco:PostcodeCode></xsl:if>
          <eco:CountryID><xsl:value-of select="cl:translate('country', my:Country)"/></eco:CountryID>
        </eco:PostalAddress>
      </xsl:for-each>
    </xsl:element>
  </xsl:template>

  <xsl:template name="place">
    <xsl:param name="name"/>
    <xsl:element name="{$name}" namespace="urn:swgw:canonical:eco:1">
      <eco:ID><xsl:value-of select="cl:translate('unlocode', @code)"/></eco:ID>
      <xsl:if test="@name"><eco:Name><xsl:value-of select="@name"/></eco:Name></xsl:if>
    </xsl:element>
  </xsl:template>

  <xsl:template name="scheme">
    <xsl:param name="from"/>
    <xsl:if test="$from/@scheme"><xsl:attribute name="schemeID"><xsl:value-of select="$from/@scheme"/></xsl:attribute></xsl:if>
  </xsl:template>
</xsl:stylesheet>
